import type { EntityManager } from '@mikro-orm/postgresql';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import { BackupJob, CopyJob } from '../db/entities';
import type { ScheduledJob, ScheduleOverlap } from '../db/entities/job-schedule';
import { scheduledBackupRun } from '../workflows/scheduled-backup';
import { scheduledCopyRun } from '../workflows/scheduled-copy';
import { HostIdKey, JobIdKey, RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import { scheduleSpec, type JobSchedule } from './backup-schedule';
import type { TemporalConfig } from './config';
import { log } from './log';
import { backupScheduleId, copyScheduleId } from './schedule-ids';
import { readSettings } from './settings';

/** What keeping schedules in step needs: a Temporal client and the task queue runs go to. */
export interface ScheduleTarget {
  temporal: Client;
  temporalConfig: TemporalConfig;
}

export type SharedScheduleSettings = Pick<JobSchedule, 'minute' | 'timezone'>;

/** The schedule settings every job shares: the scheduler's time zone and the minute past the hour. */
export async function scheduleSettings(em: EntityManager): Promise<SharedScheduleSettings> {
  const settings = await readSettings(em, ['timezone', 'server_timezone', 'cron_run_minute']);
  return { minute: settings.cron_run_minute, timezone: settings.timezone === 'server' ? settings.server_timezone : settings.timezone };
}

export const jobSchedule = (job: ScheduledJob, shared: SharedScheduleSettings): JobSchedule => ({
  hour: job.scheduleHour,
  days: job.scheduleDays,
  minute: shared.minute,
  cron: job.scheduleCron,
  timezone: job.scheduleTimezone ?? shared.timezone,
  jitterSeconds: job.scheduleJitterSeconds,
});

type ScheduleAction = Parameters<Client['schedule']['create']>[0]['action'];

export interface SchedulePlan {
  name: string;
  spec: Parameters<Client['schedule']['create']>[0]['spec'];
  action: ScheduleAction;
  overlap: ScheduleOverlap;
  catchupMinutes: number;
  paused: boolean;
}

const OVERLAP = { skip: ScheduleOverlapPolicy.SKIP, buffer_one: ScheduleOverlapPolicy.BUFFER_ONE } as const;
const PAUSE_NOTE = 'paused through the API';

/**
 * Makes one Temporal Schedule match: created or updated with this spec, action, policies and
 * pause state, or deleted (plan null). Returns when it fires next (null: paused or deleted).
 */
export async function applySchedule(target: ScheduleTarget, scheduleId: string, plan: SchedulePlan | null): Promise<Date | null> {
  const handle = target.temporal.schedule.getHandle(scheduleId);
  if (!plan) {
    await handle.delete().catch((error: unknown) => {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    });
    return null;
  }
  const { spec, action } = plan;
  const policies = { overlap: OVERLAP[plan.overlap], catchupWindow: `${plan.catchupMinutes} minutes` };
  try {
    await handle.update((previous) => ({ ...previous, spec, action, policies: { ...previous.policies, ...policies } }));
    // An update keeps the pause state: it changes through its own calls.
    const { state } = await handle.describe();
    if (state.paused !== plan.paused) await (plan.paused ? handle.pause(PAUSE_NOTE) : handle.unpause('resumed through the API'));
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) throw error;
    await target.temporal.schedule.create({
      scheduleId, spec, action, policies, memo: { job: plan.name },
      state: plan.paused ? { paused: true, note: PAUSE_NOTE } : {},
    });
  }
  if (plan.paused) return null;
  return (await handle.describe()).info.nextActionTimes[0] ?? null;
}

function jobPlan(job: ScheduledJob & { name: string }, shared: SharedScheduleSettings, action: ScheduleAction): SchedulePlan {
  return {
    name: job.name,
    spec: scheduleSpec(jobSchedule(job, shared)),
    action,
    overlap: job.scheduleOverlap,
    catchupMinutes: job.scheduleCatchupMinutes,
    paused: job.schedulePaused,
  };
}

/**
 * Makes the job's Temporal Schedule match the job: present while `schedule_enabled` (paused
 * while `schedule_paused`), deleted otherwise (or when the job is gone: pass `null`), and keeps
 * the job's next due time for absence detection. A schedule left behind by a failure here
 * removes itself at its next firing; one missing is made when the worker starts.
 */
export async function syncBackupSchedule(target: ScheduleTarget, em: EntityManager, jobId: number, job: BackupJob | null): Promise<void> {
  const plan = job?.scheduleEnabled
    ? jobPlan(job, await scheduleSettings(em), {
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
      })
    : null;
  const dueAt = await applySchedule(target, backupScheduleId(jobId, target.temporalConfig.taskQueue), plan);
  if (job) await em.nativeUpdate(BackupJob, { id: jobId }, { scheduleDueAt: dueAt });
}

/** The same for a copy job (`copy-job-schedule-<id>`, see schedule-ids.ts). */
export async function syncCopySchedule(target: ScheduleTarget, em: EntityManager, jobId: number, job: CopyJob | null): Promise<void> {
  const plan = job?.scheduleEnabled
    ? jobPlan(job, await scheduleSettings(em), {
        type: 'startWorkflow',
        workflowType: scheduledCopyRun,
        args: [{ jobId }],
        taskQueue: target.temporalConfig.taskQueue,
        typedSearchAttributes: [
          { key: RunKindKey, value: 'copy' },
          { key: JobIdKey, value: String(jobId) },
          { key: RepoIdKey, value: String(job.sourceRepo.id) },
        ],
      })
    : null;
  const dueAt = await applySchedule(target, copyScheduleId(jobId, target.temporalConfig.taskQueue), plan);
  if (job) await em.nativeUpdate(CopyJob, { id: jobId }, { scheduleDueAt: dueAt });
}

/** What Temporal says of a schedule: next and recent action times; null when it does not exist or cannot be asked. */
export async function describeSchedule(target: ScheduleTarget, scheduleId: string): Promise<ScheduleDescription | null> {
  try {
    return await target.temporal.schedule.getHandle(scheduleId).describe();
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) log.error({ err: error }, `describing schedule ${scheduleId} failed`);
    return null;
  }
}
