import { ApplicationFailure, log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { NON_RETRYABLE_FAILURES } from '../common/failures';
import { describeFailure } from './failures';

export interface BackupJobRunInput {
  runId: string;
  jobId: number;
  repoId: number;
}

export interface BackupJobRunResult {
  snapshotId: string;
  warnings: string[];
}

const records = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
});

// Unreachable hosts and locked repositories get a bounded number of spaced retries; wrong
// passwords, missing repositories and changed host keys fail at once.
const backup = proxyActivities<Activities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '2 minutes',
  retry: {
    initialInterval: '15 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 4,
    nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
  },
});

const catalogue = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_FAILURES },
});

/**
 * One run of a backup job:
 * 1. record the run as started;
 * 2. run restic backup (locally or on the job's host), retrying transient failures;
 * 3. refresh the repository's snapshot catalogue, so the new snapshot is listed (a failure here
 *    leaves the backup successful, with a warning);
 * 4. record the outcome, success or failure, on the run and the job: the last step, so a run
 *    reported finished has nothing left to do.
 */
export async function backupJobRun(input: BackupJobRunInput): Promise<BackupJobRunResult> {
  await records.markRunStarted({ runId: input.runId });

  let outcome;
  try {
    outcome = await backup.runBackup({ runId: input.runId, jobId: input.jobId });
  } catch (error) {
    const failure = describeFailure(error);
    await records.recordRunFailed({ runId: input.runId, ...failure });
    throw ApplicationFailure.create({ type: failure.code, message: failure.message, nonRetryable: true });
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
