import type { FilterQuery } from '@mikro-orm/postgresql';
import { loadRepoRuntime, REPO_RUNTIME_STATUSES, type RepoRuntimeRow, type RepoRuntimeStatus } from '../../common/repo-runtime';
import { BackupJob, CopyJob, Host, Repo, Restore, User } from '../../db/entities';
import { idFilter, recordsInReach, type ResourceScope } from '../auth/resource-scope';
import { authOf, type ApiContext } from '../context';
import type { components } from '../contract.gen';
import { respond } from '../envelope';
import { pageMeta, pageOf } from '../pagination';

/** The repositories a caller reaches, as GET /repos lists them: one stored on a host (sftp:) goes with that host. */
async function repoIdsInReach(ctx: ApiContext, scope: ResourceScope): Promise<number[]> {
  const ids = idFilter(scope.repos);
  const hostIds = idFilter(scope.hosts);
  const where: FilterQuery<Repo> = { ...(ids ? { id: ids } : {}), ...(hostIds ? { $or: [{ sshHost: null }, { sshHost: hostIds }] } : {}) };
  const rows = await ctx.state.em.createQueryBuilder(Repo).select('id').where(where).orderBy({ id: 'asc' }).execute('all', true);
  return (rows as unknown as { id: number }[]).map((row) => row.id);
}

async function runtimeInReach(ctx: ApiContext): Promise<RepoRuntimeRow[]> {
  const { resources } = authOf(ctx);
  return loadRepoRuntime(ctx.state.em, await repoIdsInReach(ctx, resources));
}

/** Each count filters as the matching list does for the same caller, so the two always agree. */
export async function getStatsSummary(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const { resources, scopes } = authOf(ctx);
  const repoIds = idFilter(resources.repos);
  const hostIds = idFilter(resources.hosts);
  const scoped = resources.repos !== null || resources.hosts !== null;
  const [runtime, hosts, backupJobs, copyJobs, restores, users] = await Promise.all([
    runtimeInReach(ctx),
    em.count(Host, hostIds ? { id: hostIds } : {}),
    // A host-limited caller does not reach local jobs (no host): they run on the control plane.
    em.count(BackupJob, { ...(repoIds ? { repo: repoIds } : {}), ...(hostIds ? { host: hostIds } : {}) }),
    em.count(CopyJob, { ...(repoIds ? { sourceRepo: repoIds } : {}), ...(hostIds ? { destHost: hostIds } : {}) }),
    em.count(Restore, recordsInReach(resources)),
    // How many accounts exist is the business of those who administer them, and of nobody scoped.
    scoped || !scopes.has('users:read') ? null : em.count(User, {}),
  ]);
  const breakdown = Object.fromEntries(REPO_RUNTIME_STATUSES.map((status) => [status, 0])) as Record<RepoRuntimeStatus, number>;
  for (const row of runtime) breakdown[row.status] += 1;
  respond(ctx, 200, {
    repos: runtime.length,
    hosts,
    backup_jobs: backupJobs,
    copy_jobs: copyJobs,
    users,
    restores,
    repo_status_breakdown: breakdown,
  } satisfies components['schemas']['StatsSummary']);
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

function runtimeView(row: RepoRuntimeRow): components['schemas']['RepoRuntimeStatus'] {
  return {
    repo_id: row.repoId,
    repo_name: row.repoName,
    snapshot_count: row.snapshotCount,
    last_snapshot_time: iso(row.lastSnapshotTime),
    hours_ago: row.hoursAgo,
    status: row.status,
    updated_at: iso(row.updatedAt),
  };
}

/** Statuses are derived, not stored: the page is cut after the status filter. */
export async function getRepoRuntime(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const status = ctx.state.query.status as RepoRuntimeStatus | undefined;
  const rows = (await runtimeInReach(ctx)).filter((row) => !status || row.status === status);
  respond(ctx, 200, rows.slice(page.offset, page.offset + page.perPage).map(runtimeView), pageMeta(page, rows.length));
}
