import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CopyOutcome } from '../activities/copy';
import { RECORD_OPTIONS } from './activity-options';
import { copyJobRun } from './copy-job-run';
import { fireJobSchedule } from './schedule-firing';

const records = proxyActivities<Activities>(RECORD_OPTIONS);

/**
 * One firing of a copy job's schedule: record a run triggered by the schedule, then carry it out
 * exactly as one asked through the API. Skipped when the job is gone or disabled; waits or is
 * skipped when a run of it is in flight, as the job's overlap policy says.
 */
export async function scheduledCopyRun({ jobId }: { jobId: number }): Promise<CopyOutcome | null> {
  return fireJobSchedule({
    jobType: 'copy',
    jobId,
    claim: (workflowId) => records.recordScheduledCopyRun({ jobId, workflowId }),
    run: ({ runId, repoId, jobName }) => copyJobRun({ runId, jobId, repoId, jobName, snapshotId: null }),
    outcome: (result) => `${result.snapshots_copied} snapshots copied, ${result.snapshots_skipped} already there`,
  });
}
