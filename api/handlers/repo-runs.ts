import { OperationRun, type OperationKind, type RunStatus } from '../../db/entities';
import { repositoryCheck } from '../../workflows/repository-maintenance';
import { RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond } from '../envelope';
import { invalidField, notFound } from '../errors';
import { startOperationRun } from '../operation-runs';
import { findPage, pageMeta, pageOf } from '../pagination';
import { observeRun, respondWithRun, type Progress } from '../runs';
import { operationRunView } from '../views';
import { findRepo } from './repos';

/** `10%` (above 0, at most 100), `n/t` (1 <= n <= t) or a size: what restic's --read-data-subset accepts. */
function subsetProblem(subset: string): string | null {
  const percent = /^([0-9.]+)%$/.exec(subset);
  if (percent) return Number(percent[1]) > 0 && Number(percent[1]) <= 100 ? null : 'a percentage must be above 0 and at most 100';
  const part = /^([0-9]+)\/([0-9]+)$/.exec(subset);
  if (part) return Number(part[1]) >= 1 && Number(part[1]) <= Number(part[2]) ? null : 'n/t needs 1 <= n <= t';
  return /^0+[KMGT]?$/.test(subset) ? 'a size must be above 0' : null;
}

/** An operation run, as Temporal sees it, in its public shape. */
export async function observedOperationView(ctx: ApiContext, run: OperationRun) {
  const observed = await observeRun(ctx.services, ctx.state.em, OperationRun, run);
  return operationRunView(observed.run, ctx.services.temporalConfig, observed.progress);
}

/** Answers a trigger with its operation run: 202 at once, or 200 once it finished within `?wait=`. */
export function respondWithOperationRun(ctx: ApiContext, run: OperationRun): Promise<void> {
  return respondWithRun(
    ctx,
    run,
    (r) => observeRun(ctx.services, ctx.state.em, OperationRun, r),
    (r, progress: Progress) => operationRunView(r, ctx.services.temporalConfig, progress),
  );
}

/** Starts `restic check` of the repository as a workflow; one check per repository at a time. */
export async function checkRepo(ctx: ApiContext): Promise<void> {
  const body = (ctx.request.body ?? {}) as RequestBody<'checkRepo'>;
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const readData = body.read_data === true;
  const readDataSubset = readData ? null : (body.read_data_subset ?? null);
  const problem = readDataSubset ? subsetProblem(readDataSubset) : null;
  if (problem) throw invalidField('read_data_subset', problem);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const run = await startOperationRun(ctx.services, ctx.state.em, authOf(ctx), {
    target: { kind: 'repo_check', repoId: repo.id },
    workflowIdPrefix: `repo-check-${repo.id}`,
    params: { read_data: readData, read_data_subset: readDataSubset },
    workflow: repositoryCheck,
    args: (runId) => [{ runId, repoId: repo.id, repoName: repo.name, readData, readDataSubset }],
    typedSearchAttributes: [
      { key: RunKindKey, value: 'repo-check' },
      { key: RepoIdKey, value: String(repo.id) },
    ],
    busy: `a check of repository ${repo.id} is already in progress`,
  }, ctx.state.idempotencyKey);
  await respondWithOperationRun(ctx, run);
}

export async function listRepoRuns(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const { status, kind } = ctx.state.query as { status?: RunStatus; kind?: OperationKind };
  const page = pageOf(ctx.state.query);
  const [runs, total] = await findPage(ctx.state.em, OperationRun, page, { repoId: repo.id, ...(status ? { status } : {}), ...(kind ? { kind } : {}) }, { queuedAt: 'desc', id: 'asc' });
  const views = await Promise.all(runs.map((run) => observedOperationView(ctx, run as OperationRun)));
  respond(ctx, 200, views, pageMeta(page, total));
}

export async function getRepoRun(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const run = await ctx.state.em.findOne(OperationRun, { id: ctx.state.params.run_id as string, repoId: repo.id });
  if (!run) throw notFound(`run ${String(ctx.state.params.run_id)} of repository ${repo.id}`);
  respond(ctx, 200, await observedOperationView(ctx, run));
}
