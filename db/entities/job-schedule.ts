import type { Opt } from '@mikro-orm/core';

export type ScheduleOverlap = 'skip' | 'buffer_one';

/** The schedule of a backup or copy job: the fields both kinds of job share. */
export abstract class ScheduledJob {
  scheduleEnabled: Opt<boolean> = false;
  scheduleHour: Opt<number> = 2;
  scheduleDays: Opt<string> = '1';
  /** A cron expression replacing hour and days; null uses them. */
  scheduleCron: string | null = null;
  /** Null follows the scheduler's time zone setting. */
  scheduleTimezone: string | null = null;
  scheduleJitterSeconds: Opt<number> = 0;
  scheduleOverlap: Opt<ScheduleOverlap> = 'skip';
  scheduleCatchupMinutes: Opt<number> = 60;
  schedulePaused: Opt<boolean> = false;
  /** The next time a run is due, as Temporal computed it: what absence detection checks. */
  scheduleDueAt: Date | null = null;
  /** The due time of the latest expected run that did not come, until a run succeeds. */
  scheduleMissedAt: Date | null = null;
}

export const SCHEDULE_PROPERTIES = {
  scheduleEnabled: { type: 'boolean' },
  scheduleHour: { type: 'integer' },
  scheduleDays: { type: 'string' },
  scheduleCron: { type: 'string', nullable: true },
  scheduleTimezone: { type: 'string', nullable: true },
  scheduleJitterSeconds: { type: 'integer' },
  scheduleOverlap: { type: 'string' },
  scheduleCatchupMinutes: { type: 'integer' },
  schedulePaused: { type: 'boolean' },
  scheduleDueAt: { type: 'Date', nullable: true },
  scheduleMissedAt: { type: 'Date', nullable: true },
} as const;
