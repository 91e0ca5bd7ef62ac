/** A job's schedule fields (hour, `schedule_days` 1 = Monday ... 7 = Sunday, or a cron expression) as Temporal terms. */
const DAY_NAMES = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'] as const;
const SHORT = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export interface JobSchedule {
  hour: number;
  /** `1,3,5`: days of the week, 1 = Monday ... 7 = Sunday. */
  days: string;
  /** The `cron_run_minute` setting. */
  minute: number;
  /** Replaces hour, days and minute when set. */
  cron: string | null;
  timezone: string;
  jitterSeconds: number;
}

const daysOf = (csv: string) => [...new Set(csv.split(',').map(Number))].sort((a, b) => a - b);

/** The Temporal Schedule spec of a job's schedule. */
export function scheduleSpec(schedule: JobSchedule) {
  const common = { timezone: schedule.timezone, jitter: schedule.jitterSeconds * 1000 };
  if (schedule.cron) return { cronExpressions: [schedule.cron], ...common };
  return {
    calendars: [{ hour: schedule.hour, minute: schedule.minute, dayOfWeek: daysOf(schedule.days).map((d) => DAY_NAMES[d - 1] as (typeof DAY_NAMES)[number]) }],
    ...common,
  };
}

/** The schedule as a cron line (0 = Sunday), as the reference shows it. */
export function cronExpression(schedule: JobSchedule): string {
  return schedule.cron ?? `${schedule.minute} ${schedule.hour} * * ${daysOf(schedule.days).map((d) => d % 7).join(',')}`;
}

/** `Mon, Wed, Fri at 02:00`, or `cron 30 2 * * 1-5`. */
export function scheduleSummary(schedule: JobSchedule): string {
  if (schedule.cron) return `cron ${schedule.cron}`;
  const at = `${String(schedule.hour).padStart(2, '0')}:${String(schedule.minute).padStart(2, '0')}`;
  const days = daysOf(schedule.days);
  return `${days.length === 7 ? 'Every day' : days.map((d) => SHORT[d - 1]).join(', ')} at ${at}`;
}
