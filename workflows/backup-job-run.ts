import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
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

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const backup = proxyActivities<Activities>(RESTIC_OPTIONS);
const catalogue = proxyActivities<Activities>(CATALOGUE_OPTIONS);

/**
 * One run of a backup job:
 * 1. record the run as started;
 * 2. take the repository's lock, shared with other backups (checks, forgets and prunes wait);
 * 3. run restic backup (locally or on the job's host), retrying transient failures;
 * 4. refresh the repository's snapshot catalogue, so the new snapshot is listed (a failure here
 *    leaves the backup successful, with a warning);
 * 5. record the outcome, success or failure, on the run and the job: the last step, so a run
 *    reported finished has nothing left to do.
 */
export async function backupJobRun(input: BackupJobRunInput): Promise<BackupJobRunResult> {
  await records.markRunStarted({ runId: input.runId });

  let outcome;
  try {
    outcome = await withRepositoryLock(input.repoId, 'shared', () => backup.runBackup({ runId: input.runId, jobId: input.jobId }));
  } catch (error) {
    const failure = describeFailure(error);
    await records.recordRunFailed({ runId: input.runId, ...failure });
    throw runFailure(failure);
  }

  const warnings = [...outcome.warnings];
  try {
    await catalogue.refreshSnapshotCatalogue({ repoId: input.repoId, viaJobId: input.jobId });
  } catch (error) {
    const failure = describeFailure(error);
    log.warn('snapshot catalogue refresh failed after a successful backup', { failure });
    warnings.push(`the snapshot list was not refreshed: ${failure.message}`);
  }
  await records.recordRunSucceeded({ runId: input.runId, ...outcome, warnings });
  return { snapshotId: outcome.snapshotId, warnings };
}
