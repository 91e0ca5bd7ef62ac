import { createHash } from 'node:crypto';
import type { EntityManager, FilterQuery } from '@mikro-orm/postgresql';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Workflow, type WorkflowStartOptions } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { BackupJob, BackupJobRun, CopyJob, OperationRun, type Restore } from '../db/entities';
import type { ApiContext, Services } from './context';
import { respond } from './envelope';
import type { components } from './contract.gen';
import { ApiError } from './errors';
import { log } from '../common/log';

export type Progress = components['schemas']['JobRun']['progress'];

export const ACTIVE_RUN_STATUSES = ['queued', 'running'] as const;

/** A backup run, an operation run or a restore: what the life-cycle code below needs of each. */
type RunEntity = typeof BackupJobRun | typeof OperationRun | typeof Restore;
type RunRecord = BackupJobRun | OperationRun | Restore;
type RunRow = Pick<RunRecord, 'id' | 'status' | 'workflowId' | 'queuedAt'>;

/** The run id an idempotency key stands for: the same kind, token, target and key always give the same run. */
export function keyedRunId(kind: string, tokenId: number, target: string | number, key: string): string {
  const hex = createHash('sha256').update(`${kind}:${tokenId}:${target}:${key}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Starts the workflow of a run just recorded as queued. If Temporal refuses it because a
 * workflow with that id exists (a retried keyed trigger), the run is that one; if Temporal cannot
 * be reached, the run is closed as failed and the request answers 503.
 */
export async function startRunWorkflow<W extends Workflow>(
  services: Services,
  em: EntityManager,
  run: RunRecord,
  workflow: W,
  options: Pick<WorkflowStartOptions<W>, 'args' | 'typedSearchAttributes' | 'memo'>,
): Promise<void> {
  try {
    await services.temporal.workflow.start(workflow, {
      ...(options as WorkflowStartOptions<W>),
      taskQueue: services.temporalConfig.taskQueue,
      workflowId: run.workflowId,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return;
    run.status = 'failed';
    run.finishedAt = new Date();
    run.failureCode = 'workflow_start_failed';
    run.failureMessage = 'the run could not be handed to Temporal';
    await em.flush();
    log.error({ err: error, workflow_id: run.workflowId }, 'starting the workflow failed');
    throw new ApiError(503, 'temporal_unavailable', 'the workflow service is unavailable; the run was not started');
  }
}

type WorkflowState = { running: true; progress: Progress } | { running: false; status: string };

/** What Temporal says of an active run's workflow: still running (with restic's last progress), or closed. */
export async function workflowState(services: Pick<Services, 'temporal'>, run: RunRow): Promise<WorkflowState> {
  let description;
  try {
    description = await services.temporal.workflow.getHandle(run.workflowId).describe();
  } catch (error) {
    // A run just inserted by a concurrent trigger has no workflow yet.
    if (error instanceof WorkflowNotFoundError && run.queuedAt.getTime() < Date.now() - 60_000) return { running: false, status: 'NOT_FOUND' };
    if (!(error instanceof WorkflowNotFoundError)) log.error({ err: error, workflow_id: run.workflowId }, 'describing the workflow failed');
    return { running: true, progress: null }; // unknown: never close a run on a guess
  }
  if (description.status.name !== 'RUNNING') return { running: false, status: description.status.name };
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    const progress = payload ? defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload) : null;
    if (progress && typeof progress.percent_done === 'number') return { running: true, progress: progress as Progress };
  }
  return { running: true, progress: null };
}

/**
 * A run closed outside its workflow (found lost, or recovered) shows on its backup or copy job
 * as one its workflow closed does (last_status, last_error), if it is still the job's last run.
 */
export async function showOnJob(em: EntityManager, entity: RunEntity, runId: string | number, outcome: { status: 'success' | 'failed'; message: string | null }): Promise<void> {
  const job = entity === BackupJobRun ? BackupJob : entity === OperationRun ? CopyJob : null;
  if (job) await em.nativeUpdate(job as typeof CopyJob, { lastRunId: String(runId) }, { lastStatus: outcome.status, lastError: outcome.message });
}

/**
 * Closes a run whose workflow ended (terminated, timed out) without recording an outcome, and
 * its job's last status with it; false if the run was closed meanwhile.
 */
export async function markLost(em: EntityManager, entity: RunEntity, run: RunRow, workflowStatus: string): Promise<boolean> {
  const message = `the workflow of this run ended (${workflowStatus}) without recording an outcome`;
  const closed = await em.nativeUpdate(
    entity as typeof OperationRun,
    { id: run.id as string, status: { $in: [...ACTIVE_RUN_STATUSES] } },
    { status: 'failed', finishedAt: new Date(), failureCode: 'workflow_lost', failureMessage: message },
  );
  if (closed === 0) return false;
  await showOnJob(em, entity, run.id, { status: 'failed', message });
  return true;
}

/**
 * An active run as Temporal sees it: its live progress while its workflow runs; if the workflow
 * has closed without recording an outcome (terminated from the Temporal UI, say), the run is
 * closed as `workflow_lost` (its job too) and returned as such. Finished runs are returned unchanged.
 */
export async function observeRun<T extends RunRow>(
  services: Services,
  em: EntityManager,
  entity: RunEntity,
  run: T,
): Promise<{ run: T; progress: Progress }> {
  if (!(ACTIVE_RUN_STATUSES as readonly string[]).includes(run.status)) return { run, progress: null };
  const state = await workflowState(services, run);
  if (state.running) return { run, progress: run.status === 'running' ? state.progress : null };
  await markLost(em, entity, run, state.status);
  // Re-read: the workflow may have recorded its own outcome just before closing.
  const reread = await em.fork().findOne(entity as typeof OperationRun, { id: run.id } as FilterQuery<OperationRun>);
  return { run: (reread as unknown as T | null) ?? run, progress: null };
}

/** Waits up to `seconds` for a run's workflow to close (for `?wait=`). */
async function waitForRun(services: Services, workflowId: string, seconds: number): Promise<void> {
  if (seconds <= 0) return;
  const handle = services.temporal.workflow.getHandle(workflowId);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    handle.result().catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, seconds * 1000))),
  ]);
  clearTimeout(timer);
}

/**
 * The answer to a run trigger: waits `?wait=` seconds for the run, reads it again as Temporal
 * sees it, and answers 200 if it finished, else 202.
 */
export async function respondWithRun<T extends RunRecord>(
  ctx: ApiContext,
  started: T,
  observe: (run: T) => Promise<{ run: T; progress: Progress }>,
  view: (run: T, progress: Progress) => unknown,
): Promise<void> {
  await waitForRun(ctx.services, started.workflowId, Number(ctx.state.query.wait ?? 0));
  await ctx.state.em.refresh(started);
  const { run, progress } = await observe(started);
  const finished = run.status === 'success' || run.status === 'failed';
  respond(ctx, finished ? 200 : 202, view(run, progress));
}
