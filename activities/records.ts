import { randomUUID } from 'node:crypto';
import { syncBackupSchedule, syncCopySchedule } from '../common/backup-schedules';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupJob, BackupJobRun, CopyJob, DomainEvent, OperationRun, Restore } from '../db/entities';
import type { ScheduleOverlap } from '../db/entities/job-schedule';
import type { ActivityDeps } from './deps';
import { insertRunUnlessBusy } from './lost-runs';

export interface RunSucceeded {
  runId: string;
  snapshotId: string;
  summary: Record<string, number>;
  warnings: string[];
  retention?: Record<string, unknown> | null;
  hooks?: Record<string, unknown> | null;
  events?: EventRecord[];
}

export interface RunFailed {
  runId: string;
  code: string;
  message: string;
  hooks?: Record<string, unknown> | null;
}

/** An event for the outbox, written in the same transaction as the outcome it reports. */
export interface EventRecord {
  type: string;
  payload: Record<string, unknown>;
}

export interface OperationSucceeded {
  runId: string;
  result: Record<string, unknown>;
  warnings: string[];
  events?: EventRecord[];
}

export interface RestoreFinished {
  restoreId: number;
  status: 'success' | 'failed';
  summary?: Record<string, unknown> | null;
  output?: string | null;
  warnings?: string[];
  failure?: { code: string; message: string } | null;
  events: EventRecord[];
}

export interface OperationFailed {
  runId: string;
  code: string;
  message: string;
  result?: Record<string, unknown> | null;
  warnings?: string[];
  events?: EventRecord[];
}

/** What a schedule firing found: its run (started), no job to run (gone), or a run of the job in flight (busy). */
export type FiringClaim =
  | { kind: 'started'; runId: string; repoId: number; hostId: number | null; jobName: string }
  /** The job is gone, unscheduled or paused: its Temporal Schedule was made to match, and this firing is skipped. */
  | { kind: 'off'; why: string }
  | { kind: 'busy'; runId: string; overlap: ScheduleOverlap; repoId: number; hostId: number | null };

/** What a successful run saved, in a line, from restic's summary. */
function savedLine(run: BackupJobRun): string {
  const n = (field: string) => run.summary?.[field] ?? 0;
  return `snapshot ${run.snapshotId?.slice(0, 8)} saved: ${n('files_new')} new and ${n('files_changed')} changed files, ${n('data_added')} bytes added`;
}

/** `backup_job.success` / `backup_job.failure`, written with the outcome it reports. */
function backupOutcomeEvent(run: BackupJobRun, job: BackupJob | null): EventRecord {
  const failure = run.failureCode ? { code: run.failureCode, message: run.failureMessage ?? '' } : null;
  return {
    type: run.status === 'success' ? 'backup_job.success' : 'backup_job.failure',
    payload: {
      id: run.jobId,
      name: job?.name ?? null,
      run_id: run.id,
      repo_id: run.repoId,
      host_id: run.hostId,
      snapshot_id: run.snapshotId,
      status: run.status,
      failure,
      output: failure ? failure.message : [savedLine(run), ...run.warnings].join('\n'),
    },
  };
}

/** Writes the life cycle of runs to Postgres: backup runs with their job's last_* fields, and operation runs. */
export function recordActivities({ orm, temporal, temporalConfig }: ActivityDeps) {
  // A firing the job does not want (a schedule outliving its job or its enabling, or firing while the job is paused, after a
  // failure to apply the change): the schedule is made to match the job again, and the firing is skipped.
  const wantsFirings = (job: BackupJob | CopyJob | null): job is BackupJob | CopyJob => job !== null && job.scheduleEnabled && !job.schedulePaused;
  const offSchedule = async (job: BackupJob | CopyJob | null, sync: () => Promise<void>): Promise<FiringClaim> => {
    await sync();
    return { kind: 'off', why: job?.scheduleEnabled ? 'the job\u2019s schedule is paused' : 'the job is gone or no longer scheduled' };
  };

  const finish = (runId: string, apply: (run: BackupJobRun, job: BackupJob | null) => void, events: EventRecord[] = []) =>
    orm.em.fork().transactional(async (em) => {
      const run = await em.findOne(BackupJobRun, runId);
      if (!run) return; // the job (and its runs) were deleted meanwhile
      const job = await em.findOne(BackupJob, run.jobId);
      apply(run, job);
      for (const event of events) em.create(DomainEvent, event);
      if (run.status === 'success' || run.status === 'failed') em.create(DomainEvent, backupOutcomeEvent(run, job));
    });

  // A copy run shows on its job too (last_run, last_status, last_error), as a backup run does.
  const updateOperation = (runId: string, apply: (run: OperationRun) => void, events: EventRecord[] = []) =>
    orm.em.fork().transactional(async (em: EntityManager) => {
      const run = await em.findOne(OperationRun, runId);
      if (run) apply(run);
      const job = run?.kind === 'copy' && run.jobId ? await em.findOne(CopyJob, run.jobId) : null;
      if (run && job) {
        if (run.status === 'running') Object.assign(job, { lastStatus: 'running', lastRun: run.startedAt, lastRunId: run.id });
        else if (job.lastRunId === run.id) Object.assign(job, { lastStatus: run.status, lastError: run.failureMessage });
      }
      for (const event of events) em.create(DomainEvent, event);
    });

  return {
    /**
     * The run a schedule firing stands for, created once per firing workflow (a retried activity
     * finds it). `off`: the job is gone, unscheduled or paused; `busy`: a run of the job is in flight.
     */
    async recordScheduledRun({ jobId, workflowId }: { jobId: number; workflowId: string }): Promise<FiringClaim> {
      const em = orm.em.fork();
      const existing = await em.findOne(BackupJobRun, { workflowId });
      if (existing) return { kind: 'started', runId: existing.id, repoId: existing.repoId, hostId: existing.hostId, jobName: '' };
      const job = await em.findOne(BackupJob, jobId);
      if (!wantsFirings(job)) return offSchedule(job, () => syncBackupSchedule({ temporal, temporalConfig }, em, jobId));
      // The run in the way: still going (this firing waits or is skipped), or lost with its workflow (closed, then this one runs).
      const active = await insertRunUnlessBusy(temporal, em, {
        insert: async () => {
          em.create(BackupJobRun, { id: randomUUID(), jobId, repoId: job.repo.id, hostId: job.host?.id ?? null, workflowId, trigger: 'schedule' });
          await em.flush();
        },
        inTheWay: () => em.findOne(BackupJobRun, { jobId, status: { $in: ['queued', 'running'] } }),
      });
      if (active) return { kind: 'busy', runId: active, overlap: job.scheduleOverlap, repoId: job.repo.id, hostId: job.host?.id ?? null };
      const run = await em.findOneOrFail(BackupJobRun, { workflowId });
      return { kind: 'started', runId: run.id, repoId: run.repoId, hostId: run.hostId, jobName: job.name };
    },

    /** The same for a copy job's firing: an operation run of kind copy, triggered by the schedule. */
    async recordScheduledCopyRun({ jobId, workflowId }: { jobId: number; workflowId: string }): Promise<FiringClaim> {
      const em = orm.em.fork();
      const job = await em.findOne(CopyJob, jobId);
      const existing = await em.findOne(OperationRun, { workflowId });
      if (existing && job) return { kind: 'started', runId: existing.id, repoId: existing.repoId as number, hostId: job.destHost?.id ?? null, jobName: job.name };
      if (!wantsFirings(job)) return offSchedule(job, () => syncCopySchedule({ temporal, temporalConfig }, em, jobId));
      const hostId = job.destHost?.id ?? null;
      const active = await insertRunUnlessBusy(temporal, em, {
        insert: async () => {
          em.create(OperationRun, { id: randomUUID(), kind: 'copy', trigger: 'schedule', jobId, repoId: job.sourceRepo.id, workflowId, params: { snapshot_id: null } });
          await em.flush();
        },
        inTheWay: () => em.findOne(OperationRun, { kind: 'copy', jobId, status: { $in: ['queued', 'running'] } }),
      });
      if (active) return { kind: 'busy', runId: active, overlap: job.scheduleOverlap, repoId: job.sourceRepo.id, hostId };
      const run = await em.findOneOrFail(OperationRun, { workflowId });
      return { kind: 'started', runId: run.id, repoId: job.sourceRepo.id, hostId, jobName: job.name };
    },

    async markRestoreStarted({ restoreId }: { restoreId: number }): Promise<void> {
      await orm.em.fork().nativeUpdate(Restore, { id: restoreId, startedAt: null }, { status: 'running', startedAt: new Date() });
    },

    async recordRestoreFinished(outcome: RestoreFinished): Promise<void> {
      await orm.em.fork().transactional(async (em) => {
        await em.nativeUpdate(Restore, { id: outcome.restoreId }, {
          status: outcome.status,
          finishedAt: new Date(),
          summary: outcome.summary ?? null,
          output: outcome.output ?? null,
          ...(outcome.warnings ? { warnings: outcome.warnings } : {}),
          failureCode: outcome.failure?.code ?? null,
          failureMessage: outcome.failure?.message ?? null,
        });
        for (const event of outcome.events) em.create(DomainEvent, event);
      });
    },

    async markOperationStarted({ runId }: { runId: string }): Promise<void> {
      await updateOperation(runId, (run) => {
        // A run already closed (found lost) is not revived.
        if (run.status !== 'queued' && run.status !== 'running') return;
        run.status = 'running';
        run.startedAt ??= new Date();
      });
    },

    async recordOperationSucceeded(outcome: OperationSucceeded): Promise<void> {
      await updateOperation(outcome.runId, (run) => {
        run.status = 'success';
        run.finishedAt = new Date();
        run.result = outcome.result;
        run.warnings = outcome.warnings;
      }, outcome.events);
    },

    async recordOperationFailed(outcome: OperationFailed): Promise<void> {
      await updateOperation(outcome.runId, (run) => {
        run.status = 'failed';
        run.finishedAt = new Date();
        run.failureCode = outcome.code;
        run.failureMessage = outcome.message;
        run.result = outcome.result ?? null;
        run.warnings = outcome.warnings ?? run.warnings;
      }, outcome.events);
    },

    async markRunStarted({ runId }: { runId: string }): Promise<void> {
      await finish(runId, (run, job) => {
        run.status = 'running';
        run.startedAt ??= new Date();
        if (job) {
          job.lastStatus = 'running';
          job.lastRun = run.startedAt;
          job.lastRunId = run.id;
        }
      });
    },

    async recordRunSucceeded(outcome: RunSucceeded): Promise<void> {
      await finish(outcome.runId, (run, job) => {
        run.status = 'success';
        run.finishedAt = new Date();
        run.snapshotId = outcome.snapshotId;
        run.summary = outcome.summary;
        run.warnings = outcome.warnings;
        run.retention = outcome.retention ?? null;
        run.hooks = outcome.hooks ?? null;
        if (job && job.lastRunId === run.id) {
          job.lastStatus = 'success';
          job.lastSnapshotId = outcome.snapshotId;
          job.lastError = null;
        }
      }, outcome.events);
    },

    async recordRunFailed(outcome: RunFailed): Promise<void> {
      await finish(outcome.runId, (run, job) => {
        run.status = 'failed';
        run.finishedAt = new Date();
        run.failureCode = outcome.code;
        run.failureMessage = outcome.message;
        run.hooks = outcome.hooks ?? null;
        if (job && job.lastRunId === run.id) {
          job.lastStatus = 'failed';
          job.lastError = outcome.message;
        }
      });
    },
  };
}
