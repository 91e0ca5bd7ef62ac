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

type ScheduledJobEntity = typeof BackupJob | typeof CopyJob;

/** What differs between the schedules of backup and copy jobs. */
interface JobScheduleKind<E extends ScheduledJobEntity> {
  entity: E;
  /** Advisory lock class: one job's schedule is applied by one caller at a time. */
  lockClass: number;
  scheduleId: (jobId: number, taskQueue: string) => string;
  workflowType: typeof scheduledBackupRun | typeof scheduledCopyRun;
  /** The search attributes of its firings beyond RunKind and JobId. */
  attributes: (job: InstanceType<E>) => { key: typeof RepoIdKey; value: string }[];
  runKind: string;
}

const BACKUP_SCHEDULES: JobScheduleKind<typeof BackupJob> = {
  entity: BackupJob,
  lockClass: 0x53424a01,
  scheduleId: backupScheduleId,
  workflowType: scheduledBackupRun,
  attributes: (job) => [{ key: RepoIdKey, value: String(job.repo.id) }, ...(job.host ? [{ key: HostIdKey, value: String(job.host.id) }] : [])],
  runKind: 'backup',
};

const COPY_SCHEDULES: JobScheduleKind<typeof CopyJob> = {
  entity: CopyJob,
  lockClass: 0x53434a01,
  scheduleId: copyScheduleId,
  workflowType: scheduledCopyRun,
  attributes: (job) => [{ key: RepoIdKey, value: String(job.sourceRepo.id) }],
  runKind: 'copy',
};

/**
 * Makes the job's Temporal Schedule match the job as saved: present while `schedule_enabled`
 * (paused while `schedule_paused`), deleted otherwise or when the job is gone, and keeps the
 * job's next due time for absence detection. It holds the job's schedule lock and reads the job
 * inside: a pass that loaded the job earlier (absence detection, reconciliation) can never put
 * back a schedule, pause state or time zone a newer change replaced. A schedule left behind by a
 * failure here removes itself at its next firing; one missing is made when the worker starts.
 */
async function syncJobSchedule<E extends ScheduledJobEntity>(target: ScheduleTarget, em: EntityManager, jobId: number, kind: JobScheduleKind<E>): Promise<void> {
  const { taskQueue } = target.temporalConfig;
  await em.fork().transactional(async (tx) => {
    await tx.execute('select pg_advisory_xact_lock(?, ?)', [kind.lockClass, jobId]);
    const job = (await tx.findOne(kind.entity as typeof BackupJob, jobId)) as InstanceType<E> | null;
    const plan = job?.scheduleEnabled
      ? jobPlan(job, await scheduleSettings(tx), {
          type: 'startWorkflow',
          workflowType: kind.workflowType,
          args: [{ jobId }],
          taskQueue,
          typedSearchAttributes: [{ key: RunKindKey, value: kind.runKind }, { key: JobIdKey, value: String(jobId) }, ...kind.attributes(job)],
        })
      : null;
    const dueAt = await applySchedule(target, kind.scheduleId(jobId, taskQueue), plan);
    if (job) await tx.nativeUpdate(kind.entity as typeof BackupJob, { id: jobId }, { scheduleDueAt: dueAt });
  });
}

/** A backup job's schedule (`backup-job-schedule-<id>`, see schedule-ids.ts), as syncJobSchedule says. */
export const syncBackupSchedule = (target: ScheduleTarget, em: EntityManager, jobId: number) => syncJobSchedule(target, em, jobId, BACKUP_SCHEDULES);

/** A copy job's schedule (`copy-job-schedule-<id>`). */
export const syncCopySchedule = (target: ScheduleTarget, em: EntityManager, jobId: number) => syncJobSchedule(target, em, jobId, COPY_SCHEDULES);

/** What Temporal says of a schedule: next and recent action times; null when it does not exist or cannot be asked. */
export async function describeSchedule(target: ScheduleTarget, scheduleId: string): Promise<ScheduleDescription | null> {
  try {
    return await target.temporal.schedule.getHandle(scheduleId).describe();
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) log.error({ err: error }, `describing schedule ${scheduleId} failed`);
    return null;
  }
}
