import { cronExpression, scheduleSummary } from '../../common/backup-schedule';
import type { FilterQuery } from '@mikro-orm/postgresql';
import { BackupJob, CopyJob, Host, Repo } from '../../db/entities';
import { backupScheduleId, copyScheduleId } from '../../common/schedule-ids';
import { idFilter } from '../auth/resource-scope';
import { describeSchedule, jobSchedule, scheduleSettings, type SharedScheduleSettings } from '../../common/backup-schedules';
import type { ScheduledJob } from '../../db/entities/job-schedule';
import { scheduleFieldsView } from '../schedule-fields';
import { authOf, type ApiContext } from '../context';
import type { components } from '../contract.gen';
import { respond } from '../envelope';
import { findPage, namesById, pageMeta, pageOf } from '../pagination';

/** The jobs a schedule list shows: those on the caller's repositories and hosts (by the job's own fields), and `?enabled=` if given. */
function scheduleListFilter<T extends object>(ctx: ApiContext, repoField: keyof T & string, hostField: keyof T & string): FilterQuery<T> {
  const { repos, hosts } = authOf(ctx).resources;
  const repoIds = idFilter(repos);
  const hostIds = idFilter(hosts);
  const { enabled } = ctx.state.query;
  return {
    ...(repoIds ? { [repoField]: repoIds } : {}),
    ...(hostIds ? { [hostField]: hostIds } : {}),
    ...(enabled !== undefined ? { scheduleEnabled: ['1', 'true'].includes(String(enabled)) } : {}),
  } as FilterQuery<T>;
}

const iso = (value: Date | string | null) => (value ? new Date(value).toISOString() : null);

/**
 * What every job's schedule shows, backup or copy: its fields, as a summary and a cron line, and
 * what Temporal says of it (next action times, latest firings).
 */
async function scheduleFields(ctx: ApiContext, job: ScheduledJob & Pick<BackupJob, 'lastRun' | 'lastStatus'>, shared: SharedScheduleSettings, scheduleId: string) {
  const schedule = jobSchedule(job, shared);
  const description = job.scheduleEnabled ? await describeSchedule(ctx.services, scheduleId) : null;
  const next = description && !description.state.paused ? description.info.nextActionTimes.slice(0, 5) : [];
  return {
    ...scheduleFieldsView(job),
    schedule_summary: scheduleSummary(schedule),
    cron_expression: cronExpression(schedule),
    timezone: schedule.timezone,
    schedule_id: job.scheduleEnabled ? scheduleId : null,
    next_run: next[0]?.toISOString() ?? null,
    next_runs: next.map((time) => time.toISOString()),
    recent_runs: (description?.info.recentActions ?? []).slice(-10).reverse().map((action) => ({
      scheduled_at: action.scheduledAt.toISOString(),
      taken_at: action.takenAt.toISOString(),
      workflow_id: action.action.type === 'startWorkflow' ? action.action.workflow.workflowId : null,
    })),
    missed_at: iso(job.scheduleMissedAt),
    last_run: iso(job.lastRun),
    last_status: job.lastStatus,
  };
}

/** The backup jobs in reach with their schedules, and when Temporal will fire each next. */
export async function listBackupSchedules(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const page = pageOf(ctx.state.query);
  const [jobs, total] = await findPage(em, BackupJob, page, scheduleListFilter<BackupJob>(ctx, 'repo', 'host'));
  const [repoNames, hostNames, shared] = await Promise.all([namesById(em, Repo, jobs.map((j) => j.repo)), namesById(em, Host, jobs.map((j) => j.host)), scheduleSettings(em)]);
  const views = await Promise.all(jobs.map(async (job): Promise<components['schemas']['BackupSchedule']> => {
    return {
      id: job.id,
      name: job.name,
      repo_id: job.repo as number,
      repo_name: repoNames.get(job.repo as number) ?? '',
      host_id: (job.host as number | null) ?? null,
      host_name: job.host === null ? null : (hostNames.get(job.host as number) ?? null),
      ...(await scheduleFields(ctx, job, shared, backupScheduleId(job.id, ctx.services.temporalConfig.taskQueue))),
    };
  }));
  respond(ctx, 200, views, pageMeta(page, total));
}

/** The copy jobs in reach (as GET /copy-jobs filters them) with their schedules. */
export async function listCopySchedules(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const page = pageOf(ctx.state.query);
  const [jobs, total] = await findPage(em, CopyJob, page, scheduleListFilter<CopyJob>(ctx, 'sourceRepo', 'destHost'));
  const [repoNames, shared] = await Promise.all([namesById(em, Repo, jobs.map((j) => j.sourceRepo)), scheduleSettings(em)]);
  const views = await Promise.all(jobs.map(async (job): Promise<components['schemas']['CopySchedule']> => {
    return {
      id: job.id,
      name: job.name,
      source_repo_id: job.sourceRepo as number,
      source_name: repoNames.get(job.sourceRepo as number) ?? '',
      dest_path: job.destPath,
      ...(await scheduleFields(ctx, job, shared, copyScheduleId(job.id, ctx.services.temporalConfig.taskQueue))),
    };
  }));
  respond(ctx, 200, views, pageMeta(page, total));
}
