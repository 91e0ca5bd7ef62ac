import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupJob, CopyJob, CronLogEntry } from '../db/entities';
import { applySchedule, syncBackupSchedule, syncCopySchedule, type ScheduleTarget } from './backup-schedules';
import { log } from './log';
import { backupScheduleId, copyScheduleId, DEFAULT_TASK_QUEUE, isOurScheduleId, schedulerTaskScheduleId } from './schedule-ids';
import { SCHEDULER_TASKS, type SchedulerTaskKey } from './scheduler-tasks';
import { syncTaskSchedule, taskPlacement } from './task-schedules';

export interface Reconciliation {
  applied: number;
  removed: string[];
  failed: string[];
}

/** The ids of the schedules the database asks for now: enabled jobs and tasks. */
async function wantedScheduleIds(em: EntityManager, taskQueue: string): Promise<Set<string>> {
  const [backups, copies] = await Promise.all([
    em.find(BackupJob, { scheduleEnabled: true }, { fields: ['id'] }),
    em.find(CopyJob, { scheduleEnabled: true }, { fields: ['id'] }),
  ]);
  const wanted = new Set([...backups.map((job) => backupScheduleId(job.id, taskQueue)), ...copies.map((job) => copyScheduleId(job.id, taskQueue))]);
  for (const key of Object.keys(SCHEDULER_TASKS) as SchedulerTaskKey[]) {
    if ((await taskPlacement(em, key)).enabled) wanted.add(schedulerTaskScheduleId(key, taskQueue));
  }
  return wanted;
}

/**
 * A schedule made before ids carried the task queue (`backup-job-schedule-3` of a deployment on
 * another queue than the default): its runs go to this queue, and its successor has our id now.
 */
async function isLegacyOfOurs(target: ScheduleTarget, scheduleId: string): Promise<boolean> {
  const { taskQueue } = target.temporalConfig;
  if (taskQueue === DEFAULT_TASK_QUEUE || !isOurScheduleId(scheduleId, DEFAULT_TASK_QUEUE)) return false;
  const { action } = await target.temporal.schedule.getHandle(scheduleId).describe();
  return action.type === 'startWorkflow' && action.taskQueue === taskQueue;
}

/**
 * Makes Temporal's schedules match the database: every enabled job and task has its schedule as
 * saved (created or updated), and a schedule of this deployment with no enabled job or task
 * behind it is deleted. Schedule ids are unique in Temporal, so this never makes a duplicate.
 * Every item is tried; the outcome is written to the cron log (`cron_run`).
 */
export async function reconcileSchedules(target: ScheduleTarget, em: EntityManager): Promise<Reconciliation> {
  const outcome: Reconciliation = { applied: 0, removed: [], failed: [] };
  // Counted: the schedules that exist once applied (a disabled task's is removed instead).
  const attempt = async (what: string, sync: () => Promise<void>, counts = true) => {
    try {
      await sync();
      if (counts) outcome.applied += 1;
    } catch (error) {
      log.error({ err: error }, `applying the schedule of ${what} failed`);
      outcome.failed.push(what);
    }
  };
  const [backups, copies] = await Promise.all([
    em.find(BackupJob, { scheduleEnabled: true }, { fields: ['id'] }),
    em.find(CopyJob, { scheduleEnabled: true }, { fields: ['id'] }),
  ]);
  for (const { id } of backups) await attempt(`backup job ${id}`, () => syncBackupSchedule(target, em, id));
  for (const { id } of copies) await attempt(`copy job ${id}`, () => syncCopySchedule(target, em, id));
  for (const key of Object.keys(SCHEDULER_TASKS) as SchedulerTaskKey[]) {
    await attempt(`task ${key}`, () => syncTaskSchedule(target, em, key), (await taskPlacement(em, key)).enabled);
  }

  const { taskQueue } = target.temporalConfig;
  const ours: string[] = [];
  for await (const schedule of target.temporal.schedule.list()) {
    if (isOurScheduleId(schedule.scheduleId, taskQueue) || (await isLegacyOfOurs(target, schedule.scheduleId))) ours.push(schedule.scheduleId);
  }
  // Asked after the listing: a job enabled through the API meanwhile keeps the schedule it just got.
  const wanted = await wantedScheduleIds(em.fork(), taskQueue);
  for (const scheduleId of ours.filter((id) => !wanted.has(id))) {
    try {
      // Listings lag behind deletions: one removed meanwhile (its job deleted through the API) is gone all the same.
      await applySchedule(target, scheduleId, null);
      outcome.removed.push(scheduleId);
    } catch (error) {
      log.error({ err: error }, `removing the orphan schedule ${scheduleId} failed`);
      outcome.failed.push(scheduleId);
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
