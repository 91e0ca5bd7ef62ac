import type { SchedulerTaskKey } from './scheduler-tasks';

/** The task queue of a deployment that names none (`TEMPORAL_TASK_QUEUE`). */
export const DEFAULT_TASK_QUEUE = 'backup-control-plane';

/**
 * Schedule ids say what they are, and whose: a deployment on another task queue than the default
 * adds it (`backup-job-schedule-3@<queue>`), so deployments sharing a Temporal namespace each keep
 * their own schedules. Workflow code reads these too: nothing here does I/O.
 */
const ofQueue = (id: string, taskQueue: string) => (taskQueue === DEFAULT_TASK_QUEUE ? id : `${id}@${taskQueue}`);

export const backupScheduleId = (jobId: number, taskQueue: string) => ofQueue(`backup-job-schedule-${jobId}`, taskQueue);
export const copyScheduleId = (jobId: number, taskQueue: string) => ofQueue(`copy-job-schedule-${jobId}`, taskQueue);
export const schedulerTaskScheduleId = (key: SchedulerTaskKey, taskQueue: string) => ofQueue(`scheduler-task-schedule-${key}`, taskQueue);

const OURS = /^(?:backup-job-schedule-\d+|copy-job-schedule-\d+|scheduler-task-schedule-[a-z_]+)(?:@(.+))?$/;

/** Whether a schedule id is one this deployment (its task queue) makes. */
export function isOurScheduleId(scheduleId: string, taskQueue: string): boolean {
  const match = OURS.exec(scheduleId);
  return match !== null && (match[1] ?? DEFAULT_TASK_QUEUE) === taskQueue;
}
