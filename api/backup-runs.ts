import { createHash, randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { BackupJob, BackupJobRun } from '../db/entities';
import { backupJobRun } from '../workflows/backup-job-run';
import { HostIdKey, JobIdKey, RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import type { AuthContext, Services } from './context';
import type { components } from './contract.gen';
import { ApiError, conflict, notFound } from './errors';
import type { Row } from './pagination';
import { jobRunView } from './views';

type Progress = components['schemas']['JobRun']['progress'];

export const ACTIVE_RUN_STATUSES = ['queued', 'running'] as const;

export function backupWorkflowId(jobId: number, runId: string): string {
  return `backup-job-${jobId}-${runId}`;
}

/** The run id an idempotency key stands for: the same token, job and key always give the same run. */
export function keyedRunId(tokenId: number, jobId: number, key: string): string {
  const hex = createHash('sha256').update(`backup-run:${tokenId}:${jobId}:${key}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Records a queued run and starts its workflow. The database admits one queued or running run
 * per job (a partial unique index), so a second trigger gets 409 `run_in_progress` — unless the
 * run in the way belongs to a workflow that is no longer running, which is then closed as lost.
 * With an idempotency key, the run id (and so the workflow id) comes from the key, and Temporal
 * refuses a second workflow with that id even if the run's row were lost.
 */
export async function startBackupRun(services: Services, em: EntityManager, job: BackupJob, auth: AuthContext, idempotencyKey?: string): Promise<BackupJobRun> {
  const id = idempotencyKey ? keyedRunId(auth.token.id, job.id, idempotencyKey) : randomUUID();
  const existing = idempotencyKey ? await em.findOne(BackupJobRun, { id }) : null;
  if (existing) return existing;
  let run: BackupJobRun;
  try {
    run = await insertQueuedRun(em, job, auth, id);
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    await closeLostRun(services, em, job);
    run = await insertQueuedRun(em, job, auth, id);
  }

  try {
    await services.temporal.workflow.start(backupJobRun, {
      taskQueue: services.temporalConfig.taskQueue,
      workflowId: run.workflowId,
      args: [{ runId: run.id, jobId: job.id, repoId: job.repo.id }],
      typedSearchAttributes: [
        { key: RunKindKey, value: 'backup' },
        { key: JobIdKey, value: String(job.id) },
        { key: RepoIdKey, value: String(job.repo.id) },
        ...(job.host ? [{ key: HostIdKey, value: String(job.host.id) }] : []),
      ],
      memo: { job: job.name, repo: job.repo.name, host: job.host?.name ?? 'local' },
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (error) {
    // The workflow of this keyed run exists already: the run is that one, not a new one.
    if (error instanceof WorkflowExecutionAlreadyStartedError) return run;
    run.status = 'failed';
    run.finishedAt = new Date();
    run.failureCode = 'workflow_start_failed';
    run.failureMessage = 'the run could not be handed to Temporal';
    await em.flush();
    console.error(`starting workflow ${run.workflowId} failed:`, error);
    throw new ApiError(503, 'temporal_unavailable', 'the workflow service is unavailable; the run was not started');
  }
  return run;
}

async function insertQueuedRun(em: EntityManager, job: BackupJob, auth: AuthContext, id: string): Promise<BackupJobRun> {
  const run = em.create(BackupJobRun, {
    id,
    jobId: job.id,
    repoId: job.repo.id,
    hostId: job.host?.id ?? null,
    workflowId: backupWorkflowId(job.id, id),
    requestedByUserId: auth.user.id,
    requestedByTokenId: auth.token.id,
  }, { persist: false });
  // In this request's own entity manager, so the run stays managed by it afterwards.
  await em.begin();
  try {
    // The job row stays locked until the run is in: a concurrent delete waits, then sees it.
    const [locked] = await em.execute('select id from backup_jobs where id = ? for share', [job.id]);
    if (!locked) throw notFound(`backup job ${job.id}`);
    em.persist(run);
    await em.commit();
  } catch (error) {
    await em.rollback();
    em.clear();
    throw error;
  }
  return run;
}

async function closeLostRun(services: Services, em: EntityManager, job: BackupJob): Promise<void> {
  const active = await em.findOne(BackupJobRun, { jobId: job.id, status: { $in: [...ACTIVE_RUN_STATUSES] } });
  if (!active) return;
  const state = await workflowState(services, active);
  if (state.running) {
    throw conflict('run_in_progress', `backup job ${job.id} already has a run in progress`, {
      run_id: active.id,
      links: jobRunView(active, services.temporalConfig).links,
    });
  }
  await markLost(em, active, state.status);
}

type WorkflowState = { running: true; progress: Progress } | { running: false; status: string };

/** What Temporal says of an active run's workflow: still running (with restic's progress), or closed. */
async function workflowState(services: Services, run: Row<BackupJobRun>): Promise<WorkflowState> {
  let description;
  try {
    description = await services.temporal.workflow.getHandle(run.workflowId).describe();
  } catch (error) {
    // A run just inserted by a concurrent trigger has no workflow yet.
    if (error instanceof WorkflowNotFoundError && run.queuedAt.getTime() < Date.now() - 60_000) return { running: false, status: 'NOT_FOUND' };
    if (!(error instanceof WorkflowNotFoundError)) console.error(`describing workflow ${run.workflowId} failed:`, error);
    return { running: true, progress: null }; // unknown: never close a run on a guess
  }
  if (description.status.name !== 'RUNNING') return { running: false, status: description.status.name };
  const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'runBackup');
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  const progress = payload ? defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload) : null;
  return { running: true, progress: progress && typeof progress.percent_done === 'number' ? (progress as Progress) : null };
}

/** Closes a run whose workflow ended (terminated, timed out) without recording an outcome. */
async function markLost(em: EntityManager, run: Row<BackupJobRun>, workflowStatus: string): Promise<void> {
  const message = `the workflow of this run ended (${workflowStatus}) without recording an outcome`;
  const closed = await em.nativeUpdate(
    BackupJobRun,
    { id: run.id, status: { $in: [...ACTIVE_RUN_STATUSES] } },
    { status: 'failed', finishedAt: new Date(), failureCode: 'workflow_lost', failureMessage: message },
  );
  if (closed) await em.nativeUpdate(BackupJob, { id: run.jobId, lastRunId: run.id }, { lastStatus: 'failed', lastError: message });
}

/**
 * An active run as Temporal sees it: its live progress while its workflow runs; if the workflow
 * has closed without recording an outcome (terminated from the Temporal UI, say), the run is
 * closed as `workflow_lost` and returned as such. Finished runs are returned unchanged.
 */
export async function observeRun<T extends Row<BackupJobRun>>(services: Services, em: EntityManager, run: T): Promise<{ run: T | BackupJobRun; progress: Progress }> {
  if (!(ACTIVE_RUN_STATUSES as readonly string[]).includes(run.status)) return { run, progress: null };
  const state = await workflowState(services, run);
  if (state.running) return { run, progress: run.status === 'running' ? state.progress : null };
  await markLost(em, run, state.status);
  // Re-read: the workflow may have recorded its own outcome just before closing.
  return { run: (await em.fork().findOne(BackupJobRun, run.id)) ?? run, progress: null };
}

/** Waits up to `seconds` for a run's workflow to close (for `?wait=`). */
export async function waitForRun(services: Services, run: BackupJobRun, seconds: number): Promise<void> {
  if (seconds <= 0) return;
  const handle = services.temporal.workflow.getHandle(run.workflowId);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    handle.result().catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, seconds * 1000))),
  ]);
  clearTimeout(timer);
}
