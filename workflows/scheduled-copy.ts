import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CopyOutcome } from '../activities/copy';
import { RECORD_OPTIONS } from './activity-options';
import { copyJobRun } from './copy-job-run';

const records = proxyActivities<Activities>(RECORD_OPTIONS);

/** A copy job's Temporal Schedule (`copy-job-schedule-<jobId>`). */
export const copyScheduleId = (jobId: number) => `copy-job-schedule-${jobId}`;

/**
 * One firing of a copy job's schedule: record a run triggered by the schedule, then carry it out
 * exactly as one asked through the API. Skipped when the job is gone, disabled, or running.
 */
export async function scheduledCopyRun({ jobId }: { jobId: number }): Promise<CopyOutcome | null> {
  const run = await records.recordScheduledCopyRun({ jobId, workflowId: workflowInfo().workflowId });
  if (!run) return null;
  return copyJobRun({ runId: run.runId, jobId, repoId: run.repoId, jobName: run.jobName, snapshotId: null });
}
