import { describeSchedule, scheduleSettings } from '../../common/backup-schedules';
import { isSchedulerTaskKey, SCHEDULER_TASKS, type SchedulerTaskKey } from '../../common/scheduler-tasks';
import { isOurScheduleId, schedulerTaskScheduleId } from '../../common/schedule-ids';
import { taskPlacement, taskSpec } from '../../common/task-schedules';
import { cronExpression } from '../../common/backup-schedule';
import { CronLogEntry } from '../../db/entities';
import { schedulerTask } from '../../workflows/scheduler-task';
import { RunKindKey } from '../../workflows/search-attributes';
import { authOf, type ApiContext } from '../context';
import type { components } from '../contract.gen';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond } from '../envelope';
import { ApiError } from '../errors';
import { log } from '../../common/log';
import { startOperationRun } from '../operation-runs';
import { respondWithOperationRun } from './repo-runs';

type Schemas = components['schemas'];

/** `Europe/Paris (UTC+01:00)`: the zone with its offset now. */
function timezoneLabel(timezone: string): string {
  const offset = new Intl.DateTimeFormat('en', { timeZone: timezone, timeZoneName: 'longOffset' }).formatToParts(new Date()).find((part) => part.type === 'timeZoneName')?.value;
  return `${timezone} (${offset === 'GMT' ? 'UTC+00:00' : (offset ?? '').replace('GMT', 'UTC')})`;
}

async function taskView(ctx: ApiContext, key: SchedulerTaskKey, timezone: string, minute: number): Promise<Schemas['SchedulerTask']> {
  const { em } = ctx.state;
  const task = SCHEDULER_TASKS[key];
  const placement = await taskPlacement(em, key);
  const description = placement.enabled ? await describeSchedule(ctx.services, schedulerTaskScheduleId(key, ctx.services.temporalConfig.taskQueue)) : null;
  const last = await em.findOne(CronLogEntry, { jobType: task.cronType }, { orderBy: { ranAt: 'desc', id: 'desc' } });
  const spec = await taskSpec(em, key, placement);
  return {
    key,
    name: task.name,
    description: task.description,
    enabled: placement.enabled,
    days: placement.day === null ? [1, 2, 3, 4, 5, 6, 7] : [placement.day],
    hour: placement.hour,
    cron_expression: 'intervals' in spec ? `*/${task.everyMinutes} * * * *` : cronExpression({ hour: placement.hour ?? 0, days: String(placement.day), minute, cron: null, timezone, jitterSeconds: 0 }),
    timezone,
    schedule_id: placement.enabled ? schedulerTaskScheduleId(key, ctx.services.temporalConfig.taskQueue) : null,
    paused: description?.state.paused ?? false,
    last_run_at: last ? last.ranAt.toISOString() : null,
    last_status: last?.status ?? null,
    next_run_at: description?.info.nextActionTimes[0]?.toISOString() ?? null,
  };
}

/** Our schedules in Temporal, counted; unreachable when Temporal does not answer. */
async function engineCounts(ctx: ApiContext): Promise<{ reachable: boolean; total: number; paused: number }> {
  try {
    let total = 0;
    let paused = 0;
    for await (const schedule of ctx.services.temporal.schedule.list()) {
      if (!isOurScheduleId(schedule.scheduleId, ctx.services.temporalConfig.taskQueue)) continue;
      total += 1;
      if (schedule.state.paused) paused += 1;
    }
    return { reachable: true, total, paused };
  } catch (error) {
    log.error({ err: error }, 'listing the Temporal schedules failed');
    return { reachable: false, total: 0, paused: 0 };
  }
}

/** The global tasks with their Temporal Schedules, and the schedule engine's state. */
export async function listSchedulerTasks(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const { timezone, minute } = await scheduleSettings(em);
  const keys = Object.keys(SCHEDULER_TASKS) as SchedulerTaskKey[];
  const global = await Promise.all(keys.map((key) => taskView(ctx, key, timezone, minute)));
  const engine = await engineCounts(ctx);
  const reconciled = await em.findOne(CronLogEntry, { jobType: 'cron_run' }, { orderBy: { ranAt: 'desc', id: 'desc' } });
  const { temporalConfig } = ctx.services;
  respond(ctx, 200, {
    global,
    engine: {
      type: 'temporal',
      namespace: temporalConfig.namespace,
      task_queue: temporalConfig.taskQueue,
      reachable: engine.reachable,
      schedules_total: engine.total,
      schedules_paused: engine.paused,
      reconciled_at: reconciled ? reconciled.ranAt.toISOString() : null,
    },
    timezone,
    timezone_label: timezoneLabel(timezone),
  } satisfies Schemas['SchedulerOverview']);
}

/** Runs a global task now, outside its schedule (and whether or not it is enabled). */
export async function runSchedulerTask(ctx: ApiContext): Promise<void> {
  const key = String(ctx.state.params.key);
  if (!isSchedulerTaskKey(key)) throw new ApiError(404, 'unknown_task', `unknown task ${key} (one of ${Object.keys(SCHEDULER_TASKS).join(', ')})`);
  const auth = authOf(ctx);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const run = await startOperationRun(ctx.services, ctx.state.em, auth, {
    target: { kind: 'scheduler_task', taskKey: key },
    workflowIdPrefix: `scheduler-task-${key}`,
    params: {},
    workflow: schedulerTask,
    args: (runId) => [{ runId, key }],
    typedSearchAttributes: [{ key: RunKindKey, value: 'scheduler-task' }],
    busy: `a run of task ${key} is already in progress`,
  }, ctx.state.idempotencyKey);
  await respondWithOperationRun(ctx, run);
}
