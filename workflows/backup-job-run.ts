import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { EventRecord } from '../activities/records';
import type { RetentionOutcome } from '../activities/retention';
import type { RetentionPolicy } from '../common/retention-policy';
import { CATALOGUE_OPTIONS, RECORD_OPTIONS, RESTIC_OPTIONS } from './activity-options';
import { describeFailure, runFailure } from './failures';
import { withRepositoryLock } from './repository-lock';

export interface BackupJobRunInput {
  runId: string;
  jobId: number;
  repoId: number;
}

export interface BackupJobRunResult {
  snapshotId: string;
  warnings: string[];
}

type RetentionRecord = Omit<RetentionOutcome, 'warnings' | 'applied'> & { applied: boolean };

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const restic = proxyActivities<Activities>(RESTIC_OPTIONS);
const catalogue = proxyActivities<Activities>(CATALOGUE_OPTIONS);

/**
 * One run of a backup job:
 * 1. record the run as started, and read the job's retention policy;
 * 2. take the repository's lock, shared with other backups (checks, forgets and prunes wait);
 * 3. run restic backup (locally or on the job's host), retrying transient failures;
 * 4. with a retention policy, take the lock alone and `restic forget` (and prune) the snapshots
 *    of the job's host and paths; a failure here leaves the backup successful, with a warning
 *    and a `backup_job.retention_failure` event;
 * 5. refresh the repository's snapshot catalogue, so the new snapshot is listed (a failure here
 *    is a warning too);
 * 6. record the outcome, success or failure, on the run and the job: the last step, so a run
 *    reported finished has nothing left to do.
 */
export async function backupJobRun(input: BackupJobRunInput): Promise<BackupJobRunResult> {
  const { runId, jobId, repoId } = input;
  await records.markRunStarted({ runId });

  let outcome;
  let plan;
  try {
    plan = await records.planBackupRun({ jobId });
    outcome = await withRepositoryLock(repoId, 'shared', () => restic.runBackup({ runId, jobId }));
  } catch (error) {
    const failure = describeFailure(error);
    await records.recordRunFailed({ runId, ...failure });
    throw runFailure(failure);
  }

  const warnings = [...outcome.warnings];
  const events: EventRecord[] = [];
  let retention: RetentionRecord | null = null;
  if (plan.retention) {
    const policy: RetentionPolicy = plan.retention;
    try {
      const { warnings: forgetWarnings, ...applied } = await withRepositoryLock(repoId, 'exclusive', () =>
        restic.applyRetention({ jobId, snapshotId: outcome.snapshotId, policy }),
      );
      warnings.push(...forgetWarnings);
      retention = applied;
    } catch (error) {
      const failure = describeFailure(error);
      const message = `the retention policy was not applied: ${failure.message}`;
      warnings.push(message);
      retention = { applied: false, removed_snapshots: [], kept_snapshots: 0, pruned: false };
      events.push({ type: 'backup_job.retention_failure', payload: { id: jobId, run_id: runId, repo_id: repoId, code: failure.code, message } });
    }
  }

  try {
    await catalogue.refreshSnapshotCatalogue({ repoId, viaJobId: jobId });
  } catch (error) {
    const failure = describeFailure(error);
    log.warn('snapshot catalogue refresh failed after a successful backup', { failure });
    warnings.push(`the snapshot list was not refreshed: ${failure.message}`);
  }
  await records.recordRunSucceeded({ runId, ...outcome, warnings, retention, events });
  return { snapshotId: outcome.snapshotId, warnings };
}
