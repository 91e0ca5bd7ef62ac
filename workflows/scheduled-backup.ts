import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { RECORD_OPTIONS } from './activity-options';
import { backupJobRun, type BackupJobRunResult } from './backup-job-run';

const records = proxyActivities<Activities>(RECORD_OPTIONS);

/** A backup job's Temporal Schedule (`backup-job-schedule-<jobId>`): the id its runs' workflows start with. */
export const backupScheduleId = (jobId: number) => `backup-job-schedule-${jobId}`;

/**
 * One firing of a job's schedule: record a run triggered by the schedule, then carry it out
 * exactly as a run asked through the API (same steps, records and events). If the job is gone,
 * or one of its runs is still in flight, this firing is skipped.
 */
export async function scheduledBackupRun({ jobId }: { jobId: number }): Promise<BackupJobRunResult | null> {
  const run = await records.recordScheduledRun({ jobId, workflowId: workflowInfo().workflowId });
  if (!run) return null;
  return backupJobRun({ runId: run.runId, jobId, repoId: run.repoId });
}
