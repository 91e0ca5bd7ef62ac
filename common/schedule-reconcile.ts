import type { EntityManager } from '@mikro-orm/postgresql';
import type { ScheduleSummary } from '@temporalio/client';
import { backupScheduleId } from '../workflows/scheduled-backup';
import { copyScheduleId } from '../workflows/scheduled-copy';
import { BackupJob, CopyJob, CronLogEntry } from '../db/entities';
import { syncBackupSchedule, syncCopySchedule, type ScheduleTarget } from './backup-schedules';
import { log } from './log';
import { SCHEDULER_TASKS, type SchedulerTaskKey } from './scheduler-tasks';
import { schedulerTaskScheduleId, syncTaskSchedule, taskPlacement } from './task-schedules';

export interface Reconciliation {
  applied: number;
  removed: string[];
  failed: string[];
}

const OURS = /^(backup-job-schedule-\d+|copy-job-schedule-\d+|scheduler-task-schedule-.+)$/;

/** A job or task schedule this deployment made: one of our ids, on our task queue. */
export const isOurSchedule = (schedule: ScheduleSummary, taskQueue: string) =>
  OURS.test(schedule.scheduleId) && schedule.memo?.task_queue === taskQueue;

/**
 * Makes Temporal's schedules match the database: every enabled job and task has its schedule as
 * saved (created or updated), and a schedule of ours with no enabled job or task behind it is
 * deleted. Schedule ids are unique in Temporal, so this never makes a duplicate. Every item is
 * tried; the outcome is written to the cron log (`cron_run`).
 */
export async function reconcileSchedules(target: ScheduleTarget, em: EntityManager): Promise<Reconciliation> {
  const outcome: Reconciliation = { applied: 0, removed: [], failed: [] };
  const attempt = async (what: string, sync: () => Promise<void>) => {
    try {
      await sync();
      outcome.applied += 1;
    } catch (error) {
      log.error({ err: error }, `applying the schedule of ${what} failed`);
      outcome.failed.push(what);
    }
  };
  const backups = await em.find(BackupJob, { scheduleEnabled: true });
  const copies = await em.find(CopyJob, { scheduleEnabled: true });
  for (const job of backups) await attempt(`backup job ${job.id}`, () => syncBackupSchedule(target, em, job.id, job));
  for (const job of copies) await attempt(`copy job ${job.id}`, () => syncCopySchedule(target, em, job.id, job));
  const tasks = Object.keys(SCHEDULER_TASKS) as SchedulerTaskKey[];
  for (const key of tasks) await attempt(`task ${key}`, () => syncTaskSchedule(target, em, key));

  const queue = target.temporalConfig.taskQueue;
  const wanted = new Set([
    ...backups.map((job) => backupScheduleId(job.id)),
    ...copies.map((job) => copyScheduleId(job.id)),
  ]);
  for (const key of tasks) if ((await taskPlacement(em, key)).enabled) wanted.add(schedulerTaskScheduleId(key, queue));
  for await (const schedule of target.temporal.schedule.list()) {
    if (!isOurSchedule(schedule, queue) || wanted.has(schedule.scheduleId)) continue;
    try {
      await target.temporal.schedule.getHandle(schedule.scheduleId).delete();
      outcome.removed.push(schedule.scheduleId);
    } catch (error) {
      log.error({ err: error }, `removing the orphan schedule ${schedule.scheduleId} failed`);
      outcome.failed.push(schedule.scheduleId);
    }
  }
  const output = `${outcome.applied} schedules applied; ${outcome.removed.length} orphans removed${outcome.removed.length ? ` (${outcome.removed.join(', ')})` : ''}${outcome.failed.length ? `; failed: ${outcome.failed.join(', ')}` : ''}`;
  em.create(CronLogEntry, { jobType: 'cron_run', status: outcome.failed.length ? 'error' : 'success', output });
  await em.flush();
  return outcome;
}

/** After a change of the shared settings (time zone, minute, task placement): every schedule applied again; throws when one could not be. */
export async function applyAllSchedules(target: ScheduleTarget, em: EntityManager): Promise<void> {
  const { failed } = await reconcileSchedules(target, em);
  if (failed.length > 0) throw new Error(`the schedules of ${failed.join(', ')} could not be applied`);
}
