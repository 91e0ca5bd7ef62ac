import type { CronJobType } from '../db/entities/cron-log-entry';
import type { SettingKey } from './settings';

export type SchedulerTaskKey = 'weekly_report' | 'integrity_check' | 'db_vacuum' | 'absence_check';

export interface SchedulerTaskSpec {
  name: string;
  description: string;
  /** How the cron log names its runs (the reference's job types). */
  cronType: CronJobType;
  /** The settings that enable and place a weekly task; absent for a task that runs every few minutes. */
  settings?: { enabled: SettingKey; day: SettingKey; hour: SettingKey };
  everyMinutes?: number;
}

/** The global tasks (workflow code reads this catalogue: it imports nothing that does I/O). Each is a Temporal Schedule (`scheduler-task-schedule-<key>`) and a run now. */
export const SCHEDULER_TASKS: Record<SchedulerTaskKey, SchedulerTaskSpec> = {
  weekly_report: {
    name: 'Weekly report',
    description: "A summary of the last 7 days' runs, failures and stale repositories, sent to users who may read statistics.",
    cronType: 'weekly_report',
    settings: { enabled: 'weekly_report_enabled', day: 'weekly_report_day', hour: 'weekly_report_hour' },
  },
  integrity_check: {
    name: 'Integrity check',
    description: '`restic check` of every repository, one after the other; a damaged one fails its check run and notifies.',
    cronType: 'auto_check',
    settings: { enabled: 'integrity_check_enabled', day: 'integrity_check_day', hour: 'integrity_check_hour' },
  },
  db_vacuum: {
    name: 'Data retention and database maintenance',
    description: 'Deletes audit rows, idempotency keys, rate-limit hits, read notifications, run history and cron log entries past their retention, then vacuums and analyses the database.',
    cronType: 'db_vacuum',
    settings: { enabled: 'maintenance_vacuum_enabled', day: 'maintenance_vacuum_day', hour: 'maintenance_vacuum_hour' },
  },
  absence_check: {
    name: 'Absence detection',
    description: 'Finds scheduled jobs whose expected run has not succeeded within the grace period (`schedule_absence_grace_minutes`) and notifies.',
    cronType: 'scheduler_task',
    everyMinutes: 10,
  },
};

export const isSchedulerTaskKey = (key: string): key is SchedulerTaskKey => Object.hasOwn(SCHEDULER_TASKS, key);
