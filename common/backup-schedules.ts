import type { EntityManager } from '@mikro-orm/postgresql';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { BackupJob, CopyJob } from '../db/entities';
import { backupScheduleId, scheduledBackupRun } from '../workflows/scheduled-backup';
import { copyScheduleId, scheduledCopyRun } from '../workflows/scheduled-copy';
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

export const jobSchedule = (job: { scheduleHour: number; scheduleDays: string }, shared: Omit<JobSchedule, 'hour' | 'days'>): JobSchedule => ({ hour: job.scheduleHour, days: job.scheduleDays, ...shared });

type ScheduleAction = Parameters<Client['schedule']['create']>[0]['action'];

/**
 * Makes one Temporal Schedule match: created or updated with this spec and action, or deleted
 * (spec null). Overlapping firings are skipped, and a firing missed while Temporal was down is
 * caught up within an hour.
 */
async function applySchedule(target: ScheduleTarget, scheduleId: string, plan: { spec: ReturnType<typeof scheduleCalendar>; action: ScheduleAction; name: string } | null): Promise<void> {
  const handle = target.temporal.schedule.getHandle(scheduleId);
  if (!plan) {
    await handle.delete().catch((error: unknown) => {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    });
    return;
  }
  const { spec, action } = plan;
  try {
    await handle.update((previous) => ({ ...previous, spec, action }));
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) throw error;
    await target.temporal.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' }, memo: { job: plan.name } });
  }
}

/**
 * Makes the job's Temporal Schedule match the job: present while `schedule_enabled`, deleted
 * otherwise (or when the job is gone: pass `null`). A schedule left behind by a failure here
 * removes itself at its next firing; one missing is made when the worker starts.
 */
export async function syncBackupSchedule(target: ScheduleTarget, em: EntityManager, jobId: number, job: BackupJob | null): Promise<void> {
  if (!job?.scheduleEnabled) return applySchedule(target, backupScheduleId(jobId), null);
  await applySchedule(target, backupScheduleId(jobId), {
    name: job.name,
    spec: scheduleCalendar(jobSchedule(job, await scheduleSettings(em))),
    action: {
      type: 'startWorkflow',
      workflowType: scheduledBackupRun,
      args: [{ jobId }],
      taskQueue: target.temporalConfig.taskQueue,
      typedSearchAttributes: [
        { key: RunKindKey, value: 'backup' },
        { key: JobIdKey, value: String(jobId) },
        { key: RepoIdKey, value: String(job.repo.id) },
        ...(job.host ? [{ key: HostIdKey, value: String(job.host.id) }] : []),
      ],
    },
  });
}

/** The same for a copy job (`copy-job-schedule-<id>`). */
export async function syncCopySchedule(target: ScheduleTarget, em: EntityManager, jobId: number, job: CopyJob | null): Promise<void> {
  if (!job?.scheduleEnabled) return applySchedule(target, copyScheduleId(jobId), null);
  await applySchedule(target, copyScheduleId(jobId), {
    name: job.name,
    spec: scheduleCalendar(jobSchedule(job, await scheduleSettings(em))),
    action: {
      type: 'startWorkflow',
      workflowType: scheduledCopyRun,
      args: [{ jobId }],
      taskQueue: target.temporalConfig.taskQueue,
      typedSearchAttributes: [
        { key: RunKindKey, value: 'copy' },
        { key: JobIdKey, value: String(jobId) },
        { key: RepoIdKey, value: String(job.sourceRepo.id) },
      ],
    },
  });
}

/** Every enabled job's schedule made to match it (after a change of the shared settings, or at worker start); all are tried. */
export async function syncAllBackupSchedules(target: ScheduleTarget, em: EntityManager): Promise<void> {
  const failed: string[] = [];
  const attempt = (what: string, sync: Promise<void>) => sync.catch((error: unknown) => {
    console.error(`syncing the schedule of ${what} failed:`, error);
    failed.push(what);
  });
  for (const job of await em.find(BackupJob, { scheduleEnabled: true })) await attempt(`backup job ${job.id}`, syncBackupSchedule(target, em, job.id, job));
  for (const job of await em.find(CopyJob, { scheduleEnabled: true })) await attempt(`copy job ${job.id}`, syncCopySchedule(target, em, job.id, job));
  if (failed.length > 0) throw new Error(`the schedules of ${failed.join(', ')} could not be applied`);
}

/** When the schedule fires next, or null (disabled, or Temporal cannot say). */
export async function nextScheduledRun(target: ScheduleTarget, scheduleId: string): Promise<Date | null> {
  try {
    const description = await target.temporal.schedule.getHandle(scheduleId).describe();
    return description.info.nextActionTimes[0] ?? null;
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) console.error(`describing schedule ${scheduleId} failed:`, error);
    return null;
  }
}
