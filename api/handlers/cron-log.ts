import { CronLogEntry } from '../../db/entities';
import { idFilter } from '../auth/resource-scope';
import { authOf, type ApiContext } from '../context';
import { respond } from '../envelope';
import { findPage, pageMeta, pageWithLimit, timeWindow, type Row } from '../pagination';
import type { components } from '../contract.gen';

/**
 * Entries about jobs in the caller's repository and host scope (a local or copy job has no host:
 * out of a host-limited caller's reach). The global ones (tasks, reconciliation: no job) speak of
 * every repository, so only a caller reaching all of them sees those.
 */
function inScope(ctx: ApiContext): Record<string, unknown> {
  const { repos, hosts } = authOf(ctx).resources;
  const repoIds = idFilter(repos);
  const hostIds = idFilter(hosts);
  return { ...(repoIds ? { repoId: repoIds } : {}), ...(hostIds ? { hostId: hostIds } : {}) };
}

const cronLogView = (entry: Row<CronLogEntry>): components['schemas']['CronLogEntry'] => ({
  id: entry.id,
  job_type: entry.jobType as components['schemas']['CronLogEntry']['job_type'],
  job_id: entry.jobId,
  status: entry.status,
  output: entry.output,
  run_id: entry.runId,
  workflow_id: entry.workflowId,
  ran_at: new Date(entry.ranAt).toISOString(),
});

async function respondWithCronLog(ctx: ApiContext): Promise<void> {
  const { query } = ctx.state;
  const page = pageWithLimit(ctx.request.query, query);
  const [entries, total] = await findPage(ctx.state.em, CronLogEntry, page, {
    ...inScope(ctx),
    ...(query.job_type ? { jobType: query.job_type as CronLogEntry['jobType'] } : {}),
    ...(query.status ? { status: query.status as CronLogEntry['status'] } : {}),
    ...timeWindow('ranAt', query),
  }, { ranAt: 'desc', id: 'desc' });
  respond(ctx, 200, entries.map(cronLogView), pageMeta(page, total));
}

/** Every scheduled action's outcome, newest first (for scheduler readers). */
export const listCronLog = respondWithCronLog;

/** The same entries, for log readers. */
export const listCronLogs = respondWithCronLog;
