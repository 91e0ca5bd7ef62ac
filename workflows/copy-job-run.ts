import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CopyOutcome } from '../activities/copy';
import { RECORD_OPTIONS, RESTIC_OPTIONS } from './activity-options';
import { describeFailure, runFailure } from './failures';
import { withRepositoryLock } from './repository-lock';

export interface CopyJobRunInput {
  runId: string;
  jobId: number;
  /** The source repository. */
  repoId: number;
  /** The job's name when the run was asked for, for its events. */
  jobName: string;
  snapshotId: string | null;
}

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const restic = proxyActivities<Activities>(RESTIC_OPTIONS);

/**
 * One run of a copy job (`copy-job-<jobId>-<runId>`):
 * 1. record the run as started (and on its job);
 * 2. take the source repository's lock, shared (as a backup does: forgets and prunes wait);
 * 3. `restic copy` what the destination lacks (initialising a missing destination if the job
 *    says so), retrying transient failures;
 * 4. record the outcome on the run and the job, and emit `copy_job.success` or `copy_job.failure`.
 */
export async function copyJobRun(input: CopyJobRunInput): Promise<CopyOutcome> {
  const { runId, jobId, repoId } = input;
  await records.markOperationStarted({ runId });
  let outcome: CopyOutcome;
  try {
    outcome = await withRepositoryLock(repoId, 'shared', () => restic.copySnapshots({ runId, jobId, snapshotId: input.snapshotId }));
  } catch (error) {
    const failure = describeFailure(error);
    const event = { type: 'copy_job.failure', payload: { id: jobId, name: input.jobName, run_id: runId, status: 'failed', failure, output: failure.message } };
    await records.recordOperationFailed({ runId, ...failure, events: [event] });
    throw runFailure(failure);
  }
  const event = { type: 'copy_job.success', payload: { id: jobId, name: input.jobName, run_id: runId, status: 'success', failure: null, output: outcome.output.join('\n') } };
  await records.recordOperationSucceeded({ runId, result: { ...outcome }, warnings: [], events: [event] });
  return outcome;
}
