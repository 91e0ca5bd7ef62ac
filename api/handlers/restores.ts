import type { EntityManager, FilterQuery } from '@mikro-orm/postgresql';
import { readSettings } from '../../common/settings';
import { Host, Repo, Restore, type Snapshot } from '../../db/entities';
import { restoreSnapshot } from '../../workflows/restore';
import { HostIdKey, RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import { userPermissions } from '../auth/roles';
import { inScope, recordsInReach, requireHost } from '../auth/resource-scope';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond } from '../envelope';
import { ApiError, invalidField } from '../errors';
import { findOr404, referenced } from '../lookup';
import { findPage, pageMeta, pageOf } from '../pagination';
import { includePathProblem, managedTarget, pathOutside, restoreModeTag } from '../restore-target';
import { observeRun, respondWithRun, startRunWorkflow, type Progress } from '../runs';
import { restoreView } from '../views';
import { matchingSnapshots } from './snapshots';

async function observedView(ctx: ApiContext, restore: Restore) {
  const observed = await observeRun(ctx.services, ctx.state.em, Restore, restore);
  return restoreView(observed.run, ctx.services.temporalConfig, observed.progress);
}

export async function listRestores(ctx: ApiContext): Promise<void> {
  const { repo_id: repoId, status } = ctx.state.query as { repo_id?: number; status?: Restore['status'] };
  const page = pageOf(ctx.state.query);
  const where: FilterQuery<Restore> = { ...recordsInReach(authOf(ctx).resources), ...(status ? { status } : {}) };
  if (repoId !== undefined) where.repoId = inScope(authOf(ctx).resources.repos, repoId) ? repoId : { $in: [] };
  const [restores, total] = await findPage(ctx.state.em, Restore, page, where, { queuedAt: 'desc', id: 'desc' });
  const views = await Promise.all(restores.map((restore) => observedView(ctx, restore as Restore)));
  respond(ctx, 200, views, pageMeta(page, total));
}

export async function getRestore(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, await observedView(ctx, await findOr404(ctx.state.em, Restore, ctx.state.params.id as number, 'restore')));
}

/** The snapshot a restore names: 422 when the repository has none by that id. */
async function snapshotOf(ctx: ApiContext, repoId: number, sid: string): Promise<Snapshot> {
  const found = await matchingSnapshots(ctx, repoId, sid);
  if (found.length > 1) throw invalidField('snapshot_id', `${sid} matches several snapshots: give more of the id`);
  if (!found[0]) throw invalidField('snapshot_id', sid === 'latest' ? `repository ${repoId} has no snapshot` : `snapshot ${sid} is not in repository ${repoId}`);
  return found[0];
}

function includesOf(include: RequestBody<'createRestore'>['include']): string[] {
  const paths = include === undefined ? [] : typeof include === 'string' ? [include] : include;
  paths.forEach((path, i) => {
    const problem = includePathProblem(path);
    if (problem) throw new ApiError(422, 'path_not_allowed', `include${typeof include === 'string' ? '' : `[${i}]`}: ${problem}`, { field: 'include' });
  });
  return [...new Set(paths)];
}

/**
 * A restore to the original location writes over live files: it needs the settings.manage
 * permission, the global switch, the host's own switch, and every path inside the allow-list.
 */
async function checkOriginalRestore(ctx: ApiContext, host: Host | null, paths: string[]): Promise<void> {
  if (!userPermissions(authOf(ctx).user).has('settings.manage')) {
    throw new ApiError(403, 'admin_required', 'restoring to the original location requires the settings.manage permission');
  }
  const settings = await readSettings(ctx.state.em, ['restore_original_global_enabled', 'restore_original_allowed_paths']);
  if (!settings.restore_original_global_enabled) throw new ApiError(422, 'original_restore_disabled', 'restores to the original location are disabled (setting restore_original_global_enabled)');
  if (host && !host.restoreOriginalEnabled) throw new ApiError(422, 'original_restore_disabled', `host ${host.name} does not allow restores to the original location (restore_original_enabled)`);
  const outside = pathOutside(paths, settings.restore_original_allowed_paths);
  if (outside !== null) throw new ApiError(422, 'path_not_allowed', `${outside} is outside restore_original_allowed_paths`, { field: 'include' });
}

async function managedRoot(em: EntityManager, host: Host | null): Promise<string> {
  if (host?.restoreManagedRoot) return host.restoreManagedRoot;
  const settings = await readSettings(em, ['restore_managed_local_root', 'restore_managed_remote_root']);
  return host ? settings.restore_managed_remote_root : settings.restore_managed_local_root;
}

/**
 * Starts a restore workflow (`restore-<id>`): the target is resolved and checked here, before
 * anything runs, so a refused restore changes nothing.
 */
export async function createRestore(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createRestore'>;
  const { em } = ctx.state;
  const auth = authOf(ctx);
  const repo = (await referenced(em, Repo, body.repo_id, 'repo_id', 'repository')) as Repo;
  const host = await referenced(em, Host, body.host_id, 'host_id', 'host');
  // No host is the control plane's own disk: only for callers whose hosts are not limited.
  requireHost(auth.resources, host?.id ?? null);
  const include = includesOf(body.include);
  const destinationMode = body.destination_mode ?? 'managed';
  const appendContextSubdir = body.append_context_subdir ?? true;
  const snapshot = await snapshotOf(ctx, repo.id, body.snapshot_id);

  let target: string;
  if (destinationMode === 'original') {
    await checkOriginalRestore(ctx, host, include.length > 0 ? include : snapshot.paths);
    target = '/';
  } else {
    target = managedTarget(await managedRoot(em, host), { hostname: snapshot.hostname, repoName: repo.name }, appendContextSubdir);
  }
  if (isDryRun(ctx)) return respondDryRun(ctx, { resolved_target: target, snapshot_id: snapshot.id });

  // The id first: the workflow id is made of it.
  const [next] = await em.execute<{ id: number }[]>("select nextval('restores_id_seq')::int as id");
  const id = next?.id as number;
  const restore = em.create(Restore, {
    id,
    repoId: repo.id,
    repoName: repo.name,
    snapshotId: snapshot.id,
    hostId: host?.id ?? null,
    hostName: host?.name ?? null,
    destinationMode,
    appendContextSubdir,
    include,
    mode: restoreModeTag({ partial: include.length > 0, remote: host !== null, destinationMode }),
    resolvedTarget: target,
    startedBy: `api:${auth.user.username}`,
    workflowId: `restore-${id}`,
    requestedByUserId: auth.user.id,
    requestedByTokenId: auth.token.id,
  });
  await em.flush();
  await startRunWorkflow(ctx.services, em, restore, restoreSnapshot, {
    args: [{ restoreId: id, repoId: repo.id, snapshotId: snapshot.id }],
    typedSearchAttributes: [
      { key: RunKindKey, value: 'restore' },
      { key: RepoIdKey, value: String(repo.id) },
      ...(host ? [{ key: HostIdKey, value: String(host.id) }] : []),
    ],
    memo: { repo: repo.name, host: host?.name ?? 'local', target },
  });
  ctx.set('Location', `/api/v1/restores/${id}`);
  await respondWithRun(
    ctx,
    restore,
    (r) => observeRun(ctx.services, em, Restore, r),
    (r, progress: Progress) => restoreView(r, ctx.services.temporalConfig, progress),
  );
}
