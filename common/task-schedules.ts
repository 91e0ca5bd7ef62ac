import type { EntityManager } from '@mikro-orm/postgresql';
import { scheduledSchedulerTask } from '../workflows/scheduler-task';
import { RunKindKey } from '../workflows/search-attributes';
import { scheduleSpec } from './backup-schedule';
import { applySchedule, scheduleSettings, type SchedulePlan, type ScheduleTarget } from './backup-schedules';
import { schedulerTaskScheduleId } from './schedule-ids';
import { SCHEDULER_TASKS, type SchedulerTaskKey } from './scheduler-tasks';
import { readSettings, type SettingKey } from './settings';

export interface TaskPlacement {
  enabled: boolean;
  day: number | null;
  hour: number | null;
}

/** Where a task stands in its settings: enabled, and its day and hour (none for a task every few minutes). */
export async function taskPlacement(em: EntityManager, key: SchedulerTaskKey): Promise<TaskPlacement> {
  const { settings } = SCHEDULER_TASKS[key];
  if (!settings) return { enabled: true, day: null, hour: null };
  const values = await readSettings(em, [settings.enabled, settings.day, settings.hour] as SettingKey[]);
  return { enabled: values[settings.enabled] === true, day: Number(values[settings.day]), hour: Number(values[settings.hour]) };
}

/** The task's spec: weekly at its day and hour in the scheduler's time zone, or every few minutes. */
export async function taskSpec(em: EntityManager, key: SchedulerTaskKey, placement: TaskPlacement) {
  const { everyMinutes } = SCHEDULER_TASKS[key];
  if (everyMinutes) return { intervals: [{ every: `${everyMinutes} minutes` }] };
  const shared = await scheduleSettings(em);
  return scheduleSpec({ ...shared, hour: placement.hour ?? 0, days: String(placement.day), cron: null, jitterSeconds: 0 });
}

/** Makes a task's Temporal Schedule match its settings: present while enabled, deleted otherwise. */
export async function syncTaskSchedule(target: ScheduleTarget, em: EntityManager, key: SchedulerTaskKey): Promise<void> {
  const placement = await taskPlacement(em, key);
  const plan: SchedulePlan | null = placement.enabled
    ? {
        name: SCHEDULER_TASKS[key].name,
        spec: await taskSpec(em, key, placement),
        action: {
          type: 'startWorkflow',
          workflowType: scheduledSchedulerTask,
          args: [{ key }],
          taskQueue: target.temporalConfig.taskQueue,
          typedSearchAttributes: [{ key: RunKindKey, value: 'scheduler-task' }],
        },
        overlap: 'skip',
        catchupMinutes: 60,
        paused: false,
      }
    : null;
  await applySchedule(target, schedulerTaskScheduleId(key, target.temporalConfig.taskQueue), plan);
}

/** The settings a task's schedule is made of: changing one re-applies the task schedules. */
export const TASK_SCHEDULE_SETTINGS: string[] = Object.values(SCHEDULER_TASKS).flatMap((task) => (task.settings ? Object.values(task.settings) : []));
