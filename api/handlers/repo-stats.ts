import { RepoStatsSample } from '../../db/entities';
import { repositoryStatsRead } from '../../workflows/repository';
import { RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import type { ApiContext } from '../context';
import { respond } from '../envelope';
import { findPage, pageMeta, pageWithLimit, timeWindow } from '../pagination';
import { repoStatsSampleView } from '../views';
import { executeWorkflow, oneOffWorkflowId, resticError } from '../workflow-calls';
import { findRepo } from './repos';

const FRESH_MS = 5 * 60_000;

/** `restic stats`, run by a worker; a restore-size sample under five minutes old is answered from the history. */
export async function getRepoStats(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const mode = String(ctx.state.query.mode ?? 'restore-size');
  if (mode === 'restore-size') {
    const recent = await ctx.state.em.findOne(RepoStatsSample, { repoId: repo.id, recordedAt: { $gt: new Date(Date.now() - FRESH_MS) } }, { orderBy: { recordedAt: 'desc' } });
    if (recent) return respond(ctx, 200, { total_size: recent.totalSize, total_file_count: recent.totalFileCount, snapshots_count: recent.snapshotCount });
  }
  try {
    respond(ctx, 200, await executeWorkflow(ctx.services, repositoryStatsRead, {
      workflowId: oneOffWorkflowId(`repo-stats-${repo.id}`),
      args: [{ repoId: repo.id, mode }],
      typedSearchAttributes: [
        { key: RunKindKey, value: 'repo-stats' },
        { key: RepoIdKey, value: String(repo.id) },
      ],
    }));
  } catch (error) {
    throw resticError(error);
  }
}

/** Samples newest first; `limit` is the reference's name for `per_page` (which wins), capped at 200. */
export async function getRepoStatsHistory(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const { query } = ctx.state;
  const page = pageWithLimit(ctx.request.query, query);
  const [samples, total] = await findPage(
    ctx.state.em,
    RepoStatsSample,
    page,
    { repoId: repo.id, ...timeWindow('recordedAt', query) },
    { recordedAt: 'desc', id: 'desc' },
  );
  respond(ctx, 200, samples.map(repoStatsSampleView), pageMeta(page, total));
}
