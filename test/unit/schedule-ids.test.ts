import { backupScheduleId, copyScheduleId, DEFAULT_TASK_QUEUE, isOurScheduleId, schedulerTaskScheduleId } from '../../common/schedule-ids';

/** Schedule ids name what they schedule, and the deployment (task queue) they belong to. */
test('on the default task queue, ids are plain; on another, they carry it', () => {
  expect(backupScheduleId(3, DEFAULT_TASK_QUEUE)).toBe('backup-job-schedule-3');
  expect(copyScheduleId(3, DEFAULT_TASK_QUEUE)).toBe('copy-job-schedule-3');
  expect(schedulerTaskScheduleId('weekly_report', DEFAULT_TASK_QUEUE)).toBe('scheduler-task-schedule-weekly_report');
  expect(backupScheduleId(3, 'site-b')).toBe('backup-job-schedule-3@site-b');
  expect(schedulerTaskScheduleId('db_vacuum', 'site-b')).toBe('scheduler-task-schedule-db_vacuum@site-b');
});

test('a deployment owns exactly the ids of its task queue', () => {
  expect(isOurScheduleId('backup-job-schedule-3', DEFAULT_TASK_QUEUE)).toBe(true);
  expect(isOurScheduleId('backup-job-schedule-3@site-b', DEFAULT_TASK_QUEUE)).toBe(false);
  expect(isOurScheduleId('backup-job-schedule-3@site-b', 'site-b')).toBe(true);
  expect(isOurScheduleId('backup-job-schedule-3', 'site-b')).toBe(false);
  expect(isOurScheduleId('copy-job-schedule-12@site-b', 'site-b')).toBe(true);
  expect(isOurScheduleId('scheduler-task-schedule-absence_check', DEFAULT_TASK_QUEUE)).toBe(true);
  // Not ours at all: other names, or a job id that is not a number.
  expect(isOurScheduleId('nightly-export', DEFAULT_TASK_QUEUE)).toBe(false);
  expect(isOurScheduleId('backup-job-schedule-x', DEFAULT_TASK_QUEUE)).toBe(false);
  expect(isOurScheduleId('backup-job-schedule-3@', DEFAULT_TASK_QUEUE)).toBe(false);
});
