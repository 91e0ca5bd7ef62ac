import { BackupJob, BackupJobRun } from '../db/entities';
import type { ActivityDeps } from './deps';

export interface RunSucceeded {
  runId: string;
  snapshotId: string;
  summary: Record<string, number>;
  warnings: string[];
}

export interface RunFailed {
  runId: string;
  code: string;
  message: string;
}

/** Writes the life cycle of backup runs to Postgres: the run row and its job's last_* fields. */
export function recordActivities({ orm }: ActivityDeps) {
  const finish = (runId: string, apply: (run: BackupJobRun, job: BackupJob | null) => void) =>
    orm.em.fork().transactional(async (em) => {
      const run = await em.findOne(BackupJobRun, runId);
      if (!run) return; // the job (and its runs) were deleted meanwhile
      const job = await em.findOne(BackupJob, run.jobId);
      apply(run, job);
    });

  return {
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
        if (job && job.lastRunId === run.id) {
          job.lastStatus = 'success';
          job.lastSnapshotId = outcome.snapshotId;
          job.lastError = null;
        }
      });
    },

    async recordRunFailed(outcome: RunFailed): Promise<void> {
      await finish(outcome.runId, (run, job) => {
        run.status = 'failed';
        run.finishedAt = new Date();
        run.failureCode = outcome.code;
        run.failureMessage = outcome.message;
        if (job && job.lastRunId === run.id) {
          job.lastStatus = 'failed';
          job.lastError = outcome.message;
        }
      });
    },
  };
}
