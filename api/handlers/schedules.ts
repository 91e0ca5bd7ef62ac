import { cronExpression, scheduleSummary } from '../../common/backup-schedule';
import { BackupJob, CopyJob, Host, Repo } from '../../db/entities';
import { backupScheduleId } from '../../workflows/scheduled-backup';
import { copyScheduleId } from '../../workflows/scheduled-copy';
import { idFilter } from '../auth/resource-scope';
import { jobSchedule, nextScheduledRun, scheduleSettings } from '../../common/backup-schedules';
import { authOf, type ApiContext } from '../context';
import type { components } from '../contract.gen';
import { respond } from '../envelope';
import { findPage, namesById, pageMeta, pageOf } from '../pagination';

const enabledFilter = (ctx: ApiContext) => (ctx.state.query.enabled === undefined ? undefined : ['1', 'true'].includes(String(ctx.state.query.enabled)));

/** What every job's schedule shows, backup or copy: its fields, as a summary and a cron line, and when it fires next. */
async function scheduleFields(ctx: ApiContext, job: Pick<BackupJob, 'scheduleEnabled' | 'scheduleHour' | 'scheduleDays' | 'lastRun' | 'lastStatus'>, shared: Awaited<ReturnType<typeof scheduleSettings>>, scheduleId: string) {
  const schedule = jobSchedule(job, shared);
  const next = job.scheduleEnabled ? await nextScheduledRun(ctx.services, scheduleId) : null;
  return {
    schedule_enabled: job.scheduleEnabled,
    schedule_hour: job.scheduleHour,
    schedule_days: job.scheduleDays,
    schedule_summary: scheduleSummary(schedule),
    cron_expression: cronExpression(schedule),
    timezone: schedule.timezone,
    schedule_id: job.scheduleEnabled ? scheduleId : null,
    next_run: next ? next.toISOString() : null,
    last_run: job.lastRun ? new Date(job.lastRun).toISOString() : null,
    last_status: job.lastStatus,
  };
}

/** The backup jobs in reach with their schedules, and when Temporal will fire each next. */
export async function listBackupSchedules(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const { repos, hosts } = authOf(ctx).resources;
  const repoIds = idFilter(repos);
  const hostIds = idFilter(hosts);
  const enabled = enabledFilter(ctx);
  const page = pageOf(ctx.state.query);
  const [jobs, total] = await findPage(em, BackupJob, page, {
    ...(repoIds ? { repo: repoIds } : {}),
    ...(hostIds ? { host: hostIds } : {}),
    ...(enabled !== undefined ? { scheduleEnabled: enabled } : {}),
  });
  const [repoNames, hostNames, shared] = await Promise.all([namesById(em, Repo, jobs.map((j) => j.repo)), namesById(em, Host, jobs.map((j) => j.host)), scheduleSettings(em)]);
  const views = await Promise.all(jobs.map(async (job): Promise<components['schemas']['BackupSchedule']> => {
    return {
      id: job.id,
      name: job.name,
      repo_id: job.repo as number,
      repo_name: repoNames.get(job.repo as number) ?? '',
      host_id: (job.host as number | null) ?? null,
      host_name: job.host === null ? null : (hostNames.get(job.host as number) ?? null),
      ...(await scheduleFields(ctx, job, shared, backupScheduleId(job.id))),
    };
  }));
  respond(ctx, 200, views, pageMeta(page, total));
}

/** The copy jobs in reach (as GET /copy-jobs filters them) with their schedules. */
export async function listCopySchedules(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const { repos, hosts } = authOf(ctx).resources;
  const repoIds = idFilter(repos);
  const hostIds = idFilter(hosts);
  const enabled = enabledFilter(ctx);
  const page = pageOf(ctx.state.query);
  const [jobs, total] = await findPage(em, CopyJob, page, {
    ...(repoIds ? { sourceRepo: repoIds } : {}),
    ...(hostIds ? { destHost: hostIds } : {}),
    ...(enabled !== undefined ? { scheduleEnabled: enabled } : {}),
  });
  const [repoNames, shared] = await Promise.all([namesById(em, Repo, jobs.map((j) => j.sourceRepo)), scheduleSettings(em)]);
  const views = await Promise.all(jobs.map(async (job): Promise<components['schemas']['CopySchedule']> => {
    return {
      id: job.id,
      name: job.name,
      source_repo_id: job.sourceRepo as number,
      source_name: repoNames.get(job.sourceRepo as number) ?? '',
      dest_path: job.destPath,
      ...(await scheduleFields(ctx, job, shared, copyScheduleId(job.id))),
    };
  }));
  respond(ctx, 200, views, pageMeta(page, total));
}
