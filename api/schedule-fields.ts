import { cronProblem, normalizeCron } from '../common/cron-expression';
import { canonicalTimeZone } from '../common/settings';
import type { ScheduledJob } from '../db/entities/job-schedule';
import type { components } from './contract.gen';
import { invalidField } from './errors';

type ScheduleBody = Partial<Pick<components['schemas']['BackupJobUpdate'],
  'schedule_enabled' | 'schedule_hour' | 'schedule_days' | 'schedule_cron' | 'schedule_timezone' | 'schedule_jitter_seconds' | 'schedule_overlap' | 'schedule_catchup_minutes' | 'schedule_paused'>>;

/** Applies the schedule fields a create or update of a backup or copy job sets; a bad cron expression or time zone is a 422. */
export function assignScheduleFields(job: ScheduledJob, body: ScheduleBody): void {
  if (body.schedule_cron) {
    const problem = cronProblem(body.schedule_cron);
    if (problem) throw invalidField('schedule_cron', problem);
  }
  const timezone = body.schedule_timezone ? canonicalTimeZone(body.schedule_timezone) : null;
  if (body.schedule_timezone && !timezone) throw invalidField('schedule_timezone', 'must be an IANA time zone, e.g. Europe/Paris');
  if (body.schedule_enabled !== undefined) job.scheduleEnabled = body.schedule_enabled;
  if (body.schedule_hour !== undefined) job.scheduleHour = body.schedule_hour;
  if (body.schedule_days !== undefined) job.scheduleDays = body.schedule_days;
  if (body.schedule_cron !== undefined) job.scheduleCron = body.schedule_cron === null ? null : normalizeCron(body.schedule_cron);
  if (body.schedule_timezone !== undefined) job.scheduleTimezone = timezone;
  if (body.schedule_jitter_seconds !== undefined) job.scheduleJitterSeconds = body.schedule_jitter_seconds;
  if (body.schedule_overlap !== undefined) job.scheduleOverlap = body.schedule_overlap;
  if (body.schedule_catchup_minutes !== undefined) job.scheduleCatchupMinutes = body.schedule_catchup_minutes;
  if (body.schedule_paused !== undefined) job.schedulePaused = body.schedule_paused;
}

/** The schedule fields of a job's view. */
export function scheduleFieldsView(job: ScheduledJob) {
  return {
    schedule_enabled: job.scheduleEnabled,
    schedule_hour: job.scheduleHour,
    schedule_days: job.scheduleDays,
    schedule_cron: job.scheduleCron,
    schedule_timezone: job.scheduleTimezone,
    schedule_jitter_seconds: job.scheduleJitterSeconds,
    schedule_overlap: job.scheduleOverlap,
    schedule_catchup_minutes: job.scheduleCatchupMinutes,
    schedule_paused: job.schedulePaused,
  };
}
