import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { syncBackupSchedule, syncCopySchedule, type ScheduleTarget } from '../common/backup-schedules';
import type { SchedulerTaskKey } from '../common/scheduler-tasks';
import { log } from '../common/log';
import { readSettings } from '../common/settings';
import { BackupJob, BackupJobRun, CopyJob, DomainEvent, OperationRun, Repo } from '../db/entities';
import type { CronJobType, CronStatus } from '../db/entities/cron-log-entry';
import type { RunTrigger } from '../db/entities/run-lifecycle';
import type { ActivityDeps } from './deps';
import { closeIfLost, insertRunUnlessBusy } from './lost-runs';
import { purgeExpiredApiRecords } from '../api/retention';

export interface CronOutcome {
  jobType: CronJobType;
  jobId: number | null;
  repoId: number | null;
  hostId: number | null;
  status: CronStatus;
  output: string | null;
  runId: string | null;
  workflowId: string;
}

/** Output kept in the cron log: the tail, as the reference kept it. */
const OUTPUT_CHARS = 4000;
/** A run counts for a due time if it started this much before it (clock skew, a manual run just before). */
const EARLY_MS = 5 * 60_000;

/** The scheduler's own work: the cron log, the global tasks, and absence detection. */
export function schedulerActivities({ orm, temporal, temporalConfig }: ActivityDeps) {
  const target: ScheduleTarget = { temporal, temporalConfig };

  return {
    /** One scheduled action's outcome, written once per workflow (a retried activity finds it). */
    async recordCronOutcome(outcome: CronOutcome): Promise<void> {
      const output = outcome.output && outcome.output.length > OUTPUT_CHARS ? outcome.output.slice(-OUTPUT_CHARS) : outcome.output;
      await orm.em.fork().getConnection().execute(
        `insert into cron_log (job_type, job_id, repo_id, host_id, status, output, run_id, workflow_id)
         values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (workflow_id) where workflow_id is not null do nothing`,
        [outcome.jobType, outcome.jobId, outcome.repoId, outcome.hostId, outcome.status, output, outcome.runId, outcome.workflowId],
      );
    },

    /** The run a task's schedule firing stands for; `busy` when a run of the task is in flight. */
    async claimScheduledTask({ key, workflowId }: { key: SchedulerTaskKey; workflowId: string }): Promise<{ runId: string } | { busy: string }> {
      const em = orm.em.fork();
      const existing = await em.findOne(OperationRun, { workflowId });
      if (existing) return { runId: existing.id };
      const active = await insertRunUnlessBusy(temporal, em, {
        insert: async () => {
          em.create(OperationRun, { id: randomUUID(), kind: 'scheduler_task', taskKey: key, trigger: 'schedule', workflowId, params: {} });
          await em.flush();
        },
        inTheWay: () => em.findOne(OperationRun, { kind: 'scheduler_task', taskKey: key, status: { $in: ['queued', 'running'] } }),
      });
      if (active) return { busy: active };
      return { runId: (await em.findOneOrFail(OperationRun, { workflowId })).id };
    },

    async listRepositoriesToCheck(): Promise<{ id: number; name: string }[]> {
      return (await orm.em.fork().find(Repo, {}, { orderBy: { id: 'asc' }, fields: ['id', 'name'] })).map(({ id, name }) => ({ id, name }));
    },

    /** A check run of one repository for the integrity task; null when a check of it is in flight already. */
    async claimRepositoryCheck({ repoId, taskWorkflowId, trigger }: { repoId: number; taskWorkflowId: string; trigger: RunTrigger }): Promise<{ runId: string; workflowId: string } | null> {
      const em = orm.em.fork();
      // The task's workflow id makes the claim idempotent across activity retries.
      const workflowIdPrefix = `repo-check-${repoId}`;
      const existing = await em.findOne(OperationRun, { kind: 'repo_check', repoId, params: { task_workflow_id: taskWorkflowId } });
      if (existing) return { runId: existing.id, workflowId: existing.workflowId };
      const id = randomUUID();
      em.create(OperationRun, {
        id, kind: 'repo_check', repoId, trigger, workflowId: `${workflowIdPrefix}-${id}`,
        params: { read_data: false, read_data_subset: null, task_workflow_id: taskWorkflowId },
      });
      try {
        await em.flush();
      } catch (error) {
        if (error instanceof UniqueConstraintViolationException) return null;
        throw error;
      }
      return { runId: id, workflowId: `${workflowIdPrefix}-${id}` };
    },

    /** The last 7 days in figures, told to those who may read statistics (`report.weekly`). */
    async sendWeeklyReport(): Promise<Record<string, unknown>> {
      const em = orm.em.fork();
      const until = new Date();
      const since = new Date(until.getTime() - 7 * 24 * 3600_000);
      const counts = async (table: string, extra = '') => {
        const [row] = await em.getConnection().execute<{ total: string; success: string; failed: string }[]>(
          `select count(*) as total, count(*) filter (where status = 'success') as success, count(*) filter (where status = 'failed') as failed
           from ${table} where queued_at >= ? ${extra}`, [since]);
        return { total: Number(row?.total ?? 0), success: Number(row?.success ?? 0), failed: Number(row?.failed ?? 0) };
      };
      const failingJobs = await em.getConnection().execute<{ id: number; name: string; failures: string }[]>(
        `select j.id, j.name, count(*) as failures from backup_job_runs r join backup_jobs j on j.id = r.job_id
         where r.queued_at >= ? and r.status = 'failed' group by j.id, j.name order by failures desc, j.id limit 20`, [since]);
      const staleRepos = await em.getConnection().execute<{ id: number; name: string; newest: Date | null }[]>(
        `select r.id, r.name, max(s.time) as newest from repos r left join snapshots s on s.repo_id = r.id
         group by r.id, r.name, r.alert_hours having max(s.time) is null or max(s.time) < now() - make_interval(hours => r.alert_hours) order by r.id`);
      const report = {
        period_start: since.toISOString(),
        period_end: until.toISOString(),
        backups: await counts('backup_job_runs'),
        copies: await counts('operation_runs', "and kind = 'copy'"),
        checks: await counts('operation_runs', "and kind = 'repo_check'"),
        restores: await counts('restores'),
        failing_jobs: failingJobs.map((job) => ({ id: job.id, name: job.name, failures: Number(job.failures) })),
        stale_repos: staleRepos.map((repo) => ({ id: repo.id, name: repo.name, newest_snapshot: repo.newest ? new Date(repo.newest).toISOString() : null })),
      };
      em.create(DomainEvent, { type: 'report.weekly', payload: report });
      await em.flush();
      return report;
    },

    /** Rows past their retention deleted, then the database vacuumed and analysed. */
    async applyDataRetention(): Promise<Record<string, number>> {
      const em = orm.em.fork();
      const settings = await readSettings(em, ['api_log_retention_days', 'run_history_retention_days', 'notification_retention_days']);
      const connection = em.getConnection();
      const days = (n: number) => new Date(Date.now() - n * 24 * 3600_000);
      const runsBefore = days(settings.run_history_retention_days);
      const notificationsBefore = days(settings.notification_retention_days);
      const removed = async (sql: string, params: unknown[]) => {
        const result = await connection.execute(sql, params, 'run');
        return (result as { affectedRows?: number }).affectedRows ?? 0;
      };
      // The API purges its own records every few minutes too; the pass counts what was left.
      const api = await purgeExpiredApiRecords(em);
      const deleted = {
        api_token_logs: api.logs,
        idempotency_keys: api.idempotencyKeys,
        rate_hits: api.rateHits,
        activity_logs: await removed('delete from activity_logs where created_at < ?', [days(settings.api_log_retention_days)]),
        notifications: await removed('delete from app_notifications where is_read and created_at < ?', [notificationsBefore]),
        notification_log: await removed('delete from notification_log where created_at < ?', [notificationsBefore]),
        // A job keeps its latest run, whatever its age: it is what the job shows.
        backup_runs: await removed(`delete from backup_job_runs where finished_at < ? and id not in (select last_run_id from backup_jobs where last_run_id is not null)`, [runsBefore]),
        operation_runs: await removed(`delete from operation_runs where finished_at < ? and id not in (select last_run_id from copy_jobs where last_run_id is not null)`, [runsBefore]),
        restores: await removed('delete from restores where finished_at < ?', [runsBefore]),
        webhook_deliveries: await removed(`delete from webhook_deliveries where state in ('delivered', 'failed') and created_at < ?`, [runsBefore]),
        // Only events the relay has handed on: one still waiting is delivered first.
        events: await removed('delete from events where relayed_at is not null and created_at < ?', [runsBefore]),
        cron_log: await removed('delete from cron_log where ran_at < ?', [runsBefore]),
      };
      // Outside a transaction: VACUUM cannot run in one.
      await connection.execute('vacuum (analyze)');
      return deleted;
    },

    /**
     * Scheduled jobs whose due run has not succeeded within the grace period: each reported once
     * per due time (`backup_job.missed` / `copy_job.missed`), and its next due time read again
     * from its Temporal Schedule (re-made if it went missing).
     */
    async detectAbsences(): Promise<{ checked: number; missed: { type: 'backup' | 'copy'; id: number; due_at: string }[] }> {
      const em = orm.em.fork();
      const { schedule_absence_grace_minutes: grace } = await readSettings(em, ['schedule_absence_grace_minutes']);
      const overdue = { scheduleEnabled: true, schedulePaused: false, scheduleDueAt: { $lt: new Date(Date.now() - grace * 60_000) } };
      const missed: { type: 'backup' | 'copy'; id: number; due_at: string }[] = [];
      const backups = await em.find(BackupJob, overdue, { populate: ['repo', 'host'] });
      const copies = await em.find(CopyJob, overdue, { populate: ['sourceRepo'] });
      const succeededSince = async (table: string, jobFilter: string, jobId: number, since: Date) => {
        const [row] = await em.getConnection().execute<{ n: number }[]>(
          `select count(*)::int as n from ${table} where ${jobFilter} and job_id = ? and status = 'success' and queued_at >= ?`, [jobId, new Date(since.getTime() - EARLY_MS)]);
        return (row?.n ?? 0) > 0;
      };
      const ACTIVE = { status: { $in: ['queued', 'running'] as ('queued' | 'running')[] } };

      const check = async (type: 'backup' | 'copy', job: BackupJob | CopyJob, resync: () => Promise<void>) => {
        const dueAt = job.scheduleDueAt as Date;
        const [table, jobFilter] = type === 'backup' ? ['backup_job_runs', 'true'] : ['operation_runs', "kind = 'copy'"];
        // A run still going (a long one, or one a buffered firing waits for) is not a missed one, yet;
        // one whose workflow is gone is closed first, so that it silences nothing.
        const active = type === 'backup'
          ? await closeIfLost(temporal, em, await em.findOne(BackupJobRun, { jobId: job.id, ...ACTIVE }))
          : await closeIfLost(temporal, em, await em.findOne(OperationRun, { kind: 'copy', jobId: job.id, ...ACTIVE }));
        if (active) return;
        const succeeded = await succeededSince(table, jobFilter, job.id, dueAt);
        const reported = job.scheduleMissedAt?.getTime() === dueAt.getTime();
        if (!succeeded && !reported) {
          missed.push({ type, id: job.id, due_at: dueAt.toISOString() });
          const repo = job instanceof BackupJob ? job.repo : job.sourceRepo;
          const hostId = job instanceof BackupJob ? (job.host?.id ?? null) : (job.destHost?.id ?? null);
          em.create(DomainEvent, {
            type: `${type}_job.missed`,
            payload: { id: job.id, name: job.name, repo_id: repo.id, host_id: hostId, due_at: dueAt.toISOString(), grace_minutes: grace },
          });
          job.scheduleMissedAt = dueAt;
          await em.flush();
        }
        // Its next due time, from Temporal; a failure here is tried again at the next check, without telling the miss twice.
        await resync().catch((error: unknown) => log.error({ err: error }, `re-reading the schedule of ${type} job ${job.id} failed`));
      };
      for (const job of backups) await check('backup', job, () => syncBackupSchedule(target, em, job.id));
      for (const job of copies) await check('copy', job, () => syncCopySchedule(target, em, job.id));
      // A success after a missed run clears it.
      await em.getConnection().execute(`update backup_jobs j set schedule_missed_at = null where schedule_missed_at is not null
        and exists (select 1 from backup_job_runs r where r.job_id = j.id and r.status = 'success' and r.queued_at >= j.schedule_missed_at)`);
      await em.getConnection().execute(`update copy_jobs j set schedule_missed_at = null where schedule_missed_at is not null
        and exists (select 1 from operation_runs r where r.kind = 'copy' and r.job_id = j.id and r.status = 'success' and r.queued_at >= j.schedule_missed_at)`);
      return { checked: backups.length + copies.length, missed };
    },
  };
}
