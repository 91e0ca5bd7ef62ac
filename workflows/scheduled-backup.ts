import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { RECORD_OPTIONS } from './activity-options';
import { backupJobRun, type BackupJobRunResult } from './backup-job-run';
import { fireJobSchedule } from './schedule-firing';

const records = proxyActivities<Activities>(RECORD_OPTIONS);

/**
 * One firing of a job's schedule: record a run triggered by the schedule, then carry it out
 * exactly as a run asked through the API (same steps, records and events). If the job is gone,
 * this firing is skipped; if one of its runs is in flight, it waits or is skipped as the job's
 * overlap policy says.
 */
export async function scheduledBackupRun({ jobId }: { jobId: number }): Promise<BackupJobRunResult | null> {
  return fireJobSchedule({
    jobType: 'backup',
    jobId,
    claim: (workflowId) => records.recordScheduledRun({ jobId, workflowId }),
    run: ({ runId, repoId }) => backupJobRun({ runId, jobId, repoId }),
    outcome: (result) => [`snapshot ${result.snapshotId.slice(0, 8)} saved`, ...result.warnings].join('\n'),
  });
}
