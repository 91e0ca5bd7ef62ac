import { FailureType } from '../../common/failures';
import { Snapshot } from '../../db/entities';
import { snapshotBrowse, snapshotCatalogueRefresh, snapshotRetag } from '../../workflows/repository';
import { snapshotDelete } from '../../workflows/repository-maintenance';
import { RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond } from '../envelope';
import { ApiError, invalidField, notFound } from '../errors';
import { startOperationRun } from '../operation-runs';
import { pageMeta, pageOf } from '../pagination';
import { snapshotView } from '../views';
import { applicationFailureOf, executeWorkflow, oneOffWorkflowId, resticError } from '../workflow-calls';
import { respondWithOperationRun } from './repo-runs';
import { findRepo } from './repos';

/** Reloads a repository's catalogue through a worker; concurrent refreshes of one repository share a workflow. */
async function refreshCatalogue(ctx: ApiContext, repoId: number): Promise<void> {
  try {
    await executeWorkflow(ctx.services, snapshotCatalogueRefresh, {
      workflowId: `snapshot-refresh-${repoId}`,
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [{ repoId }],
      typedSearchAttributes: [
        { key: RunKindKey, value: 'snapshot-refresh' },
        { key: RepoIdKey, value: String(repoId) },
      ],
    });
  } catch (error) {
    throw resticError(error);
  }
}

/**
 * The catalogued snapshots an id or id prefix (a short id) names, at most two; `latest` names the
 * newest. A miss re-reads the catalogue once (the snapshot may be newer than it), and `latest`
 * always does.
 */
export async function matchingSnapshots(ctx: ApiContext, repoId: number, sid: string): Promise<Snapshot[]> {
  if (sid === 'latest') {
    await refreshCatalogue(ctx, repoId);
    return ctx.state.em.find(Snapshot, { repoId }, { orderBy: { time: 'desc', id: 'asc' }, limit: 1 });
  }
  const lookup = () => ctx.state.em.find(Snapshot, { repoId, id: { $like: `${sid}%` } }, { limit: 2 });
  const found = await lookup();
  if (found.length > 0) return found;
  await refreshCatalogue(ctx, repoId);
  return lookup();
}

/** The snapshot a path names, or 404: restic itself would exit 0 for an unknown id. */
async function findSnapshot(ctx: ApiContext, repoId: number): Promise<Snapshot> {
  const sid = String(ctx.state.params.sid);
  const found = await matchingSnapshots(ctx, repoId, sid);
  if (found.length > 1) throw invalidField('sid', `${sid} matches several snapshots: give more of the id`);
  const [snapshot] = found;
  if (!snapshot) throw notFound(`snapshot ${sid} of repository ${repoId}`);
  return snapshot;
}

export async function getSnapshot(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  respond(ctx, 200, snapshotView(await findSnapshot(ctx, repo.id)));
}

/** Sets, adds or removes tags; restic rewrites the snapshot, so the answer is the new snapshot (new id). */
export async function updateSnapshotTags(ctx: ApiContext): Promise<void> {
  const { tags, mode = 'set' } = ctx.request.body as RequestBody<'updateSnapshotTags'>;
  if (mode !== 'set' && tags.length === 0) throw invalidField('tags', `must not be empty to ${mode} tags`);
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const snapshot = await findSnapshot(ctx, repo.id);
  const wanted = new Set(mode === 'set' ? tags : mode === 'add' ? [...snapshot.tags, ...tags] : snapshot.tags.filter((tag) => !tags.includes(tag)));
  if (isDryRun(ctx)) return respondDryRun(ctx);
  // restic would rewrite the snapshot even to the tags it has: a change of nothing keeps the id.
  if (wanted.size === snapshot.tags.length && snapshot.tags.every((tag) => wanted.has(tag))) return respond(ctx, 200, snapshotView(snapshot));
  let retagged: { snapshotId: string };
  try {
    retagged = await executeWorkflow(ctx.services, snapshotRetag, {
      workflowId: oneOffWorkflowId(`snapshot-retag-${repo.id}`),
      args: [{ repoId: repo.id, snapshotId: snapshot.id, tags: [...wanted], previous: snapshot.tags }],
      typedSearchAttributes: [
        { key: RunKindKey, value: 'snapshot-retag' },
        { key: RepoIdKey, value: String(repo.id) },
      ],
    });
  } catch (error) {
    if (applicationFailureOf(error)?.type === FailureType.SnapshotNotFound) throw notFound(`snapshot ${snapshot.shortId} of repository ${repo.id}`);
    throw resticError(error);
  }
  const rewritten = await ctx.state.em.fork().findOne(Snapshot, { repoId: repo.id, id: retagged.snapshotId });
  if (!rewritten) throw notFound(`snapshot ${retagged.snapshotId.slice(0, 8)} of repository ${repo.id}`);
  respond(ctx, 200, snapshotView(rewritten));
}

/** Lists snapshots from the catalogue, newest first; the catalogue is read from restic on first use or on `refresh`. */
export async function listSnapshots(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const { query } = ctx.state;
  if (query.refresh === true || !repo.snapshotsRefreshedAt) await refreshCatalogue(ctx, repo.id);

  const page = pageOf(query);
  const qb = ctx.state.em.createQueryBuilder(Snapshot).where({ repoId: repo.id });
  if (typeof query.host === 'string') qb.andWhere({ hostname: query.host });
  if (typeof query.tag === 'string') qb.andWhere('tags @> ?::jsonb', [JSON.stringify([query.tag])]);
  if (typeof query.path === 'string') qb.andWhere('paths @> ?::jsonb', [JSON.stringify([query.path])]);
  const total = await qb.clone().getCount();
  const snapshots = await qb.orderBy({ time: 'desc', id: 'asc' }).limit(page.perPage).offset(page.offset).getResult();
  respond(ctx, 200, snapshots.map(snapshotView), pageMeta(page, total));
}

/** Starts `restic forget` of one snapshot (and a prune, if asked) as a workflow; admins only, as in the reference. */
export async function deleteSnapshot(ctx: ApiContext): Promise<void> {
  if (authOf(ctx).user.role !== 'admin') throw new ApiError(403, 'admin_required', 'deleting a snapshot requires the admin role');
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const snapshot = await findSnapshot(ctx, repo.id);
  const prune = ctx.state.query.prune === true;
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { snapshot: snapshotView(snapshot) } });
  const run = await startOperationRun(ctx.services, ctx.state.em, authOf(ctx), {
    target: { kind: 'snapshot_delete', repoId: repo.id, snapshotId: snapshot.id },
    workflowIdPrefix: `snapshot-delete-${repo.id}`,
    params: { prune },
    workflow: snapshotDelete,
    args: (runId) => [{ runId, repoId: repo.id, snapshotId: snapshot.id, prune }],
    typedSearchAttributes: [
      { key: RunKindKey, value: 'snapshot-delete' },
      { key: RepoIdKey, value: String(repo.id) },
    ],
    busy: `snapshot ${snapshot.shortId} of repository ${repo.id} is already being deleted`,
  }, ctx.state.idempotencyKey);
  await respondWithOperationRun(ctx, run);
}

/** One page of one directory of a snapshot, read by a worker from restic's trees. */
export async function listSnapshotFiles(ctx: ApiContext): Promise<void> {
  const { query } = ctx.state;
  if (query.path !== undefined && query.path_base64 !== undefined) throw invalidField('path_base64', 'give either path or path_base64, not both');
  const pathBytes = typeof query.path_base64 === 'string' ? Buffer.from(query.path_base64, 'base64') : Buffer.from(String(query.path ?? '/'), 'utf8');
  if (pathBytes[0] !== 0x2f) throw invalidField(query.path_base64 !== undefined ? 'path_base64' : 'path', 'must be an absolute path');
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const snapshot = await findSnapshot(ctx, repo.id);
  const page = pageOf(query);
  let listed;
  try {
    listed = await executeWorkflow(ctx.services, snapshotBrowse, {
      workflowId: oneOffWorkflowId(`snapshot-browse-${repo.id}`),
      args: [{ repoId: repo.id, tree: snapshot.tree, pathBase64: pathBytes.toString('base64'), offset: page.offset, limit: page.perPage }],
      typedSearchAttributes: [
        { key: RunKindKey, value: 'snapshot-browse' },
        { key: RepoIdKey, value: String(repo.id) },
      ],
    });
  } catch (error) {
    const failure = applicationFailureOf(error);
    if (failure?.type === FailureType.PathNotFound) throw notFound(failure.message.replace(/ is not in the snapshot$/, ` in snapshot ${snapshot.shortId}`));
    if (failure?.type === FailureType.NotADirectory) throw invalidField(query.path_base64 !== undefined ? 'path_base64' : 'path', failure.message);
    throw resticError(error);
  }
  respond(ctx, 200, listed.entries, pageMeta(page, listed.total));
}
