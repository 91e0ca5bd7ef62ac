import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { type BackupJob, BackupJobRun } from '../db/entities';
import { backupJobRun } from '../workflows/backup-job-run';
import { HostIdKey, JobIdKey, RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import type { AuthContext, Services } from './context';
import type { components } from './contract.gen';
import { ApiError, conflict, notFound } from './errors';
import { jobRunView } from './views';

type Progress = components['schemas']['JobRun']['progress'];

export const ACTIVE_RUN_STATUSES = ['queued', 'running'] as const;

export function backupWorkflowId(jobId: number, runId: string): string {
  return `backup-job-${jobId}-${runId}`;
}

/**
 * Records a queued run and starts its workflow. The database admits one queued or running run
 * per job (a partial unique index), so a second trigger gets 409 `run_in_progress` — unless the
 * run in the way belongs to a workflow that is no longer running, which is then closed as lost.
 */
export async function startBackupRun(services: Services, em: EntityManager, job: BackupJob, auth: AuthContext): Promise<BackupJobRun> {
  let run: BackupJobRun;
  try {
    run = await insertQueuedRun(em, job, auth);
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    await closeLostRun(services, em, job);
    run = await insertQueuedRun(em, job, auth);
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
    });
  } catch (error) {
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

async function insertQueuedRun(em: EntityManager, job: BackupJob, auth: AuthContext): Promise<BackupJobRun> {
  const id = randomUUID();
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
  let running: boolean;
  try {
    const description = await services.temporal.workflow.getHandle(active.workflowId).describe();
    running = description.status.name === 'RUNNING';
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
    running = active.queuedAt.getTime() > Date.now() - 60_000; // just inserted by a concurrent trigger
  }
  if (running) {
    throw conflict('run_in_progress', `backup job ${job.id} already has a run in progress`, {
      run_id: active.id,
      links: jobRunView(active, services.temporalConfig).links,
    });
  }
  active.status = 'failed';
  active.finishedAt = new Date();
  active.failureCode = 'workflow_lost';
  active.failureMessage = 'the workflow of this run ended without recording an outcome';
  await em.flush();
}

/** Live restic progress of a running backup: the last heartbeat of its backup activity. */
export async function readRunProgress(services: Services, run: BackupJobRun): Promise<Progress> {
  if (run.status !== 'running') return null;
  try {
    const description = await services.temporal.workflow.getHandle(run.workflowId).describe();
    const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'runBackup');
    const payload = pending?.heartbeatDetails?.payloads?.[0];
    if (!payload) return null;
    const progress = defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload);
    return progress && typeof progress.percent_done === 'number' ? (progress as Progress) : null;
  } catch {
    return null; // progress is best-effort; the run resource is still accurate without it
  }
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
