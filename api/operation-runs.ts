import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import type { Workflow, WorkflowStartOptions } from '@temporalio/client';
import { OperationRun, type OperationKind } from '../db/entities';
import type { AuthContext, Services } from './context';
import { conflict } from './errors';
import { ACTIVE_RUN_STATUSES, keyedRunId, markLost, startRunWorkflow, workflowState } from './runs';
import { operationRunView } from './views';

/** What one operation run is about; the database admits one active run per job, or else per (kind, repo, snapshot, task). */
export interface OperationTarget {
  kind: OperationKind;
  jobId?: number | null;
  repoId?: number | null;
  hostId?: number | null;
  snapshotId?: string | null;
  taskKey?: string | null;
}

export interface OperationStart<W extends Workflow> {
  target: OperationTarget;
  /** Workflow id without the run id: `repo-check-3` gives `repo-check-3-<runId>`. */
  workflowIdPrefix: string;
  /** What the run was asked, kept with it. */
  params: Record<string, unknown>;
  workflow: W;
  args: (runId: string) => WorkflowStartOptions<W>['args'];
  typedSearchAttributes: WorkflowStartOptions<W>['typedSearchAttributes'];
  /** The 409 message when a run of the same target is in flight. */
  busy: string;
}

/**
 * Records a queued operation run and starts its workflow, as backup runs do: a second trigger
 * while one is active is 409 `run_in_progress` (unless the active run's workflow has closed, and
 * the run is then closed as lost); an idempotency key fixes the run id and the workflow id.
 */
export async function startOperationRun<W extends Workflow>(
  services: Services,
  em: EntityManager,
  auth: AuthContext,
  start: OperationStart<W>,
  idempotencyKey?: string,
): Promise<OperationRun> {
  const id = idempotencyKey ? keyedRunId(start.target.kind, auth.token.id, start.workflowIdPrefix, idempotencyKey) : randomUUID();
  const existing = idempotencyKey ? await em.findOne(OperationRun, { id }) : null;
  if (existing) return existing;
  const insert = async () => {
    const run = em.create(OperationRun, {
      id,
      ...start.target,
      workflowId: `${start.workflowIdPrefix}-${id}`,
      params: start.params,
      requestedByUserId: auth.user.id,
      requestedByTokenId: auth.token.id,
    });
    await em.flush();
    return run;
  };
  let run: OperationRun;
  try {
    run = await insert();
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    em.clear();
    await closeLostOperation(services, em, start);
    run = await insert();
  }
  await startRunWorkflow(services, em, run, start.workflow, { args: start.args(run.id), typedSearchAttributes: start.typedSearchAttributes });
  return run;
}

async function closeLostOperation(services: Services, em: EntityManager, start: OperationStart<Workflow>): Promise<void> {
  const { kind, jobId = null, repoId = null, snapshotId = null, taskKey = null } = start.target;
  const target = jobId !== null ? { kind, jobId } : { kind, jobId, repoId, snapshotId, taskKey };
  const active = await em.findOne(OperationRun, { ...target, status: { $in: [...ACTIVE_RUN_STATUSES] } });
  if (!active) return;
  const state = await workflowState(services, active);
  if (state.running) throw conflict('run_in_progress', start.busy, { run_id: active.id, links: operationRunView(active, services.temporalConfig).links });
  await markLost(em, OperationRun, active, state.status);
}
