import { FailureType } from '../../common/failures';
import { Snapshot } from '../../db/entities';
import { snapshotCatalogueRefresh } from '../../workflows/repository';
import { RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import type { ApiContext } from '../context';
import { respond } from '../envelope';
import { ApiError } from '../errors';
import { pageMeta, pageOf } from '../pagination';
import { snapshotView } from '../views';
import { applicationFailureOf, executeWorkflow } from '../workflow-calls';
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
    const failure = applicationFailureOf(error);
    if (!failure) throw error;
    const reason = failure.type === FailureType.WrongPassword ? 'wrong_password' : failure.type === FailureType.RepositoryNotFound ? 'repository_not_found' : null;
    throw new ApiError(502, 'restic_error', failure.message, reason ? { reason } : {});
  }
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
