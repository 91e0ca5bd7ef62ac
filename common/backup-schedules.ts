import type { EntityManager } from '@mikro-orm/postgresql';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { BackupJob } from '../db/entities';
import { backupScheduleId, scheduledBackupRun } from '../workflows/scheduled-backup';
import { HostIdKey, JobIdKey, RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import { scheduleCalendar, type JobSchedule } from './backup-schedule';
import type { TemporalConfig } from './config';
import { readSettings } from './settings';

/** What keeping schedules in step needs: a Temporal client and the task queue runs go to. */
export interface ScheduleTarget {
  temporal: Client;
  temporalConfig: TemporalConfig;
}

/** The schedule settings every job shares: the scheduler's time zone and the minute past the hour. */
export async function scheduleSettings(em: EntityManager): Promise<Omit<JobSchedule, 'hour' | 'days'>> {
  const settings = await readSettings(em, ['timezone', 'server_timezone', 'cron_run_minute']);
  return { minute: settings.cron_run_minute, timezone: settings.timezone === 'server' ? settings.server_timezone : settings.timezone };
}

export const jobSchedule = (job: Pick<BackupJob, 'scheduleHour' | 'scheduleDays'>, shared: Omit<JobSchedule, 'hour' | 'days'>): JobSchedule => ({ hour: job.scheduleHour, days: job.scheduleDays, ...shared });

/**
 * Makes the job's Temporal Schedule match the job: created or updated while `schedule_enabled`,
 * deleted otherwise (or when the job is gone: pass `null`). Overlapping firings are skipped, and
 * a firing missed while Temporal was down is caught up within an hour. A schedule left behind by
 * a failure here removes itself at its next firing; one missing is made when the worker starts.
 */
export async function syncBackupSchedule(target: ScheduleTarget, em: EntityManager, jobId: number, job: BackupJob | null): Promise<void> {
  const handle = target.temporal.schedule.getHandle(backupScheduleId(jobId));
  if (!job?.scheduleEnabled) {
    await handle.delete().catch((error: unknown) => {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    });
    return;
  }
  const spec = scheduleCalendar(jobSchedule(job, await scheduleSettings(em)));
  const action = {
    type: 'startWorkflow' as const,
    workflowType: scheduledBackupRun,
    args: [{ jobId }] as [{ jobId: number }],
    taskQueue: target.temporalConfig.taskQueue,
    typedSearchAttributes: [
      { key: RunKindKey, value: 'backup' },
      { key: JobIdKey, value: String(jobId) },
      { key: RepoIdKey, value: String(job.repo.id) },
      ...(job.host ? [{ key: HostIdKey, value: String(job.host.id) }] : []),
    ],
  };
  try {
    await handle.update((previous) => ({ ...previous, spec, action }));
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) throw error;
    await target.temporal.schedule.create({
      scheduleId: backupScheduleId(jobId),
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { job: job.name },
    });
  }
}

/** Every enabled job's schedule made to match it (after a change of the shared settings, or at worker start); all are tried. */
export async function syncAllBackupSchedules(target: ScheduleTarget, em: EntityManager): Promise<void> {
  const failed: number[] = [];
  for (const job of await em.find(BackupJob, { scheduleEnabled: true })) {
    await syncBackupSchedule(target, em, job.id, job).catch((error: unknown) => {
      console.error(`syncing the schedule of backup job ${job.id} failed:`, error);
      failed.push(job.id);
    });
  }
  if (failed.length > 0) throw new Error(`the schedules of backup jobs ${failed.join(', ')} could not be applied`);
}

/** When the schedule fires next, or null (disabled, or Temporal cannot say). */
export async function nextScheduledRun(target: ScheduleTarget, jobId: number): Promise<Date | null> {
  try {
    const description = await target.temporal.schedule.getHandle(backupScheduleId(jobId)).describe();
    return description.info.nextActionTimes[0] ?? null;
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) console.error(`describing the schedule of backup job ${jobId} failed:`, error);
    return null;
  }
}
