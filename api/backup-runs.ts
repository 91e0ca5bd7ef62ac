import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { type BackupJob, BackupJobRun } from '../db/entities';
import { backupJobRun } from '../workflows/backup-job-run';
import { HostIdKey, JobIdKey, RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import type { AuthContext, Services } from './context';
import { conflict, notFound } from './errors';
import type { Row } from './pagination';
import { ACTIVE_RUN_STATUSES, keyedRunId, markLost, observeRun, startRunWorkflow, workflowState, type Progress } from './runs';
import { jobRunView } from './views';

export function backupWorkflowId(jobId: number, runId: string): string {
  return `backup-job-${jobId}-${runId}`;
}

/**
 * Records a queued run and starts its workflow. The database admits one queued or running run
 * per job (a partial unique index), so a second trigger gets 409 `run_in_progress` — unless the
 * run in the way belongs to a workflow that is no longer running, which is then closed as lost.
 * With an idempotency key, the run id (and so the workflow id) comes from the key, and Temporal
 * refuses a second workflow with that id even if the run's row were lost.
 */
export async function startBackupRun(services: Services, em: EntityManager, job: BackupJob, auth: AuthContext, idempotencyKey?: string): Promise<BackupJobRun> {
  const id = idempotencyKey ? keyedRunId('backup-run', auth.token.id, job.id, idempotencyKey) : randomUUID();
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
  await startRunWorkflow(services, em, run, backupJobRun, {
    args: [{ runId: run.id, jobId: job.id, repoId: job.repo.id }],
    typedSearchAttributes: [
      { key: RunKindKey, value: 'backup' },
      { key: JobIdKey, value: String(job.id) },
      { key: RepoIdKey, value: String(job.repo.id) },
      ...(job.host ? [{ key: HostIdKey, value: String(job.host.id) }] : []),
    ],
    memo: { job: job.name, repo: job.repo.name, host: job.host?.name ?? 'local' },
  });
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
  await markLost(em, BackupJobRun, active, state.status);
}

/** A backup run as Temporal sees it (see observeRun). */
export function observeBackupRun<T extends Row<BackupJobRun>>(services: Services, em: EntityManager, run: T): Promise<{ run: T; progress: Progress }> {
  return observeRun(services, em, BackupJobRun, run);
}
