import type { EntityManager } from '@mikro-orm/postgresql';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { scheduleCalendar, type JobSchedule } from '../common/backup-schedule';
import { readSettings } from '../common/settings';
import { BackupJob } from '../db/entities';
import { backupScheduleId, scheduledBackupRun } from '../workflows/scheduled-backup';
import { HostIdKey, JobIdKey, RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import type { Services } from './context';
import { ApiError } from './errors';

/** The schedule settings every job shares: the scheduler's time zone and the minute past the hour. */
export async function scheduleSettings(em: EntityManager): Promise<Omit<JobSchedule, 'hour' | 'days'>> {
  const settings = await readSettings(em, ['timezone', 'server_timezone', 'cron_run_minute']);
  return { minute: settings.cron_run_minute, timezone: settings.timezone === 'server' ? settings.server_timezone : settings.timezone };
}

export const jobSchedule = (job: Pick<BackupJob, 'scheduleHour' | 'scheduleDays'>, shared: Omit<JobSchedule, 'hour' | 'days'>): JobSchedule => ({ hour: job.scheduleHour, days: job.scheduleDays, ...shared });

/**
 * Makes the job's Temporal Schedule match the job: created or updated while `schedule_enabled`,
 * deleted otherwise (or when the job is gone: pass `null`). Overlapping firings are skipped, and
 * a firing missed while Temporal was down is caught up within an hour.
 */
export async function syncBackupSchedule(services: Services, em: EntityManager, jobId: number, job: BackupJob | null): Promise<void> {
  const handle = services.temporal.schedule.getHandle(backupScheduleId(jobId));
  try {
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
      taskQueue: services.temporalConfig.taskQueue,
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
      await services.temporal.schedule.create({
        scheduleId: backupScheduleId(jobId),
        spec,
        action,
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
        memo: { job: job.name },
      });
    }
  } catch (error) {
    console.error(`syncing the schedule of backup job ${jobId} failed:`, error);
    throw new ApiError(503, 'temporal_unavailable', `backup job ${jobId} was saved, but its schedule could not be applied in Temporal: save it again`);
  }
}

/** After a change of the scheduler's time zone or minute: every enabled schedule follows it. */
export async function syncAllBackupSchedules(services: Services, em: EntityManager): Promise<void> {
  for (const job of await em.find(BackupJob, { scheduleEnabled: true })) await syncBackupSchedule(services, em, job.id, job);
}

/** When the schedule fires next, or null (disabled, or Temporal cannot say). */
export async function nextScheduledRun(services: Services, jobId: number): Promise<Date | null> {
  try {
    const description = await services.temporal.schedule.getHandle(backupScheduleId(jobId)).describe();
    return description.info.nextActionTimes[0] ?? null;
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) console.error(`describing the schedule of backup job ${jobId} failed:`, error);
    return null;
  }
}
