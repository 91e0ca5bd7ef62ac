import { log } from '../../common/log';
import { raw, type EntityManager, type FilterQuery, type Knex } from '@mikro-orm/postgresql';
import { WorkflowFailedError } from '@temporalio/client';
import { describeSchedule } from '../../common/backup-schedules';
import type { TemporalConfig } from '../../common/config';
import { temporalUiLink } from '../../common/temporal';
import { BackupJob, BackupJobRun, CopyJob, OperationRun, Repo, Restore, WebhookDelivery } from '../../db/entities';
import { maintenancePass } from '../../workflows/maintenance-pass';
import { lockStateQuery } from '../../workflows/repository-lock';
import { backupScheduleId, copyScheduleId } from '../../common/schedule-ids';
import { RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import { webhookDeliveryWorkflowId } from '../../workflows/webhook-delivery';
import { idFilter, inScope, recordsInReach, type ResourceScope } from '../auth/resource-scope';
import { authOf, type ApiContext, type RequestBody, type Services } from '../context';
import type { components } from '../contract.gen';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond } from '../envelope';
import { ApiError, invalidField } from '../errors';
import { startOperationRun } from '../operation-runs';
import { pageMeta, pageOf } from '../pagination';
import { ACTIVE_RUN_STATUSES, markLost, observeRun, showOnJob, workflowState } from '../runs';
import { applicationFailureOf } from '../workflow-calls';
import { respondWithOperationRun } from './repo-runs';
import { servedByWorker, taskQueuePollers, timestampDate } from '../task-queue-pollers';

type Schemas = components['schemas'];
type RunKind = Schemas['RecentRun']['kind'];
type RunStatus = Schemas['RecentRun']['status'];

/** One run of any kind, as the union below reads it. */
interface RunRow {
  kind: RunKind;
  id: string;
  status: RunStatus;
  trigger: Schemas['RecentRun']['trigger'];
  workflow_id: string | null;
  job_id: number | null;
  repo_id: number | null;
  host_id: number | null;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  failure_code: string | null;
  failure_message: string | null;
  /** Whether the run's own route can show it: its job (backups) or repository (operation runs) still exists. */
  linkable: boolean;
}

const SUMMARY_WINDOW_MS = 24 * 3600_000;
/** A lock workflow that does not answer a query in this time (no worker) counts no waiting run. */
const LOCK_QUERY_DEADLINE_MS = 3_000;

const RUN_COLUMNS = ['status', 'trigger', 'workflowId', 'jobId', 'repoId', 'hostId', 'queuedAt', 'startedAt', 'finishedAt', 'failureCode', 'failureMessage'] as const;

/**
 * Every run in the caller's reach, as one SQL union with the columns of RunRow: backup runs,
 * operation runs and restores (filtered by recordsInReach), and webhook deliveries, which concern
 * no repository or host and so are only in reach of callers whose scopes are not limited.
 */
function runsInReach(em: EntityManager, scope: ResourceScope): Knex.QueryBuilder {
  const reach = recordsInReach(scope);
  const branches = [
    em.createQueryBuilder(BackupJobRun, 'r')
      .select([raw(`'backup'::text as kind`), raw('r.id::text as id'), ...RUN_COLUMNS, raw('exists (select 1 from backup_jobs j where j.id = r.job_id) as linkable')]).where(reach),
    em.createQueryBuilder(OperationRun, 'r')
      .select([raw('r.kind::text as kind'), raw('r.id::text as id'), ...RUN_COLUMNS, raw('exists (select 1 from repos p where p.id = r.repo_id) as linkable')]).where(reach),
    em.createQueryBuilder(Restore, 'r')
      .select([raw(`'restore'::text as kind`), raw('r.id::text as id'), ...RUN_COLUMNS.map((c) => (c === 'jobId' ? raw('null::int as job_id') : c)), raw('true as linkable')]).where(reach),
  ].map((qb) => qb.getKnexQuery());
  if (scope.repos === null && scope.hosts === null) {
    branches.push(
      em.createQueryBuilder(WebhookDelivery, 'd').select([
        raw(`'webhook_delivery'::text as kind`),
        raw('d.id::text as id'),
        raw(`case d.state when 'pending' then 'queued' when 'retrying' then 'running' when 'delivered' then 'success' else 'failed' end as status`),
        raw(`'system' as trigger`),
        raw('null::text as workflow_id'),
        raw('null::int as job_id'),
        raw('null::int as repo_id'),
        raw('null::int as host_id'),
        raw('d.created_at as queued_at'),
        raw('(select min(a.attempted_at) from webhook_delivery_attempts a where a.delivery_id = d.id) as started_at'),
        raw(`case when d.state in ('delivered', 'failed') then d.attempted_at end as finished_at`),
        raw(`case when d.state = 'failed' then 'delivery_failed' end as failure_code`),
        raw(`case when d.state = 'failed' then d.error end as failure_message`),
        raw('false as linkable'),
      ]).getKnexQuery(),
    );
  }
  return em.getKnex().queryBuilder().from(em.getKnex().unionAll(branches).as('r'));
}

/** The run a row stands for, as the run life-cycle helpers read it. */
const recordOf = (row: RunRow) => ({ id: row.kind === 'restore' ? Number(row.id) : row.id, status: row.status, workflowId: row.workflow_id as string, queuedAt: new Date(row.queued_at) });

const workflowIdOf = (row: RunRow) => (row.kind === 'webhook_delivery' ? webhookDeliveryWorkflowId(Number(row.id)) : (row.workflow_id as string));

/** The API address of a run, as its own view links it; none for deliveries, runs of no repository, and runs whose job or repository is gone. */
function selfLink(row: RunRow): string | null {
  if (!row.linkable) return null;
  if (row.kind === 'backup') return `/api/v1/backup-jobs/${row.job_id}/runs/${row.id}`;
  if (row.kind === 'restore') return `/api/v1/restores/${row.id}`;
  return `/api/v1/repos/${row.repo_id}/runs/${row.id}`;
}

function recentRunView(row: RunRow, temporal: TemporalConfig): Schemas['RecentRun'] {
  const iso = (date: Date | null) => (date ? new Date(date).toISOString() : null);
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    trigger: row.trigger,
    workflow_id: workflowIdOf(row),
    job_id: row.job_id,
    repo_id: row.repo_id,
    host_id: row.host_id,
    queued_at: new Date(row.queued_at).toISOString(),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
    duration_ms: row.started_at && row.finished_at ? new Date(row.finished_at).getTime() - new Date(row.started_at).getTime() : null,
    failure: row.failure_code ? { code: row.failure_code, message: row.failure_message ?? '' } : null,
    links: { self: selfLink(row), temporal_ui: temporalUiLink(temporal, workflowIdOf(row)) },
  };
}

/**
 * An active run of the list as Temporal sees it: one whose workflow has closed without an outcome
 * is closed as `workflow_lost` (its job too), as when it is read on its own route.
 */
async function observedRow(ctx: ApiContext, row: RunRow): Promise<RunRow> {
  if (row.kind === 'webhook_delivery' || !(ACTIVE_RUN_STATUSES as readonly string[]).includes(row.status)) return row;
  const entity = row.kind === 'backup' ? BackupJobRun : row.kind === 'restore' ? Restore : OperationRun;
  const { run } = await observeRun(ctx.services, ctx.state.em, entity, recordOf(row));
  const read = run as Partial<Pick<OperationRun, 'status' | 'finishedAt' | 'failureCode' | 'failureMessage'>>;
  if (!read.finishedAt || !read.status) return row;
  return { ...row, status: read.status, finished_at: read.finishedAt, failure_code: read.failureCode ?? null, failure_message: read.failureMessage ?? null };
}

export async function listRecentJobs(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const { kind, status, limit } = ctx.state.query as { kind?: RunKind; status?: RunStatus; limit?: number };
  // The contract defaults per_page: only the raw query says whether the client gave it.
  const page = pageOf({ ...ctx.state.query, per_page: ctx.query.per_page === undefined && limit !== undefined ? limit : ctx.state.query.per_page });
  const filtered = () => runsInReach(em, authOf(ctx).resources).where({ ...(kind ? { kind } : {}), ...(status ? { status } : {}) });
  const connection = em.getConnection();
  const [rows, counted] = await Promise.all([
    connection.execute<RunRow[]>(filtered().select('*').orderBy([{ column: 'queued_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.perPage).offset(page.offset)),
    connection.execute<{ n: number }[]>(filtered().select(em.getKnex().raw('count(*)::int as n'))),
  ]);
  const observed = await Promise.all(rows.map((row) => observedRow(ctx, row)));
  respond(ctx, 200, observed.map((row) => recentRunView(row, ctx.services.temporalConfig)), pageMeta(page, counted[0]?.n ?? 0));
}

/** Open repository locks of this task queue within reach, and how many runs wait in each (asked of the lock workflow). */
async function runsWaitingForLocks(services: Services, scope: ResourceScope): Promise<number> {
  const query = `RunKind = 'repo-lock' AND ExecutionStatus = 'Running' AND TaskQueue = '${services.temporalConfig.taskQueue}'`;
  const waiting: Promise<number>[] = [];
  for await (const lock of services.temporal.workflow.list({ query })) {
    const repoId = Number(lock.typedSearchAttributes.get(RepoIdKey));
    if (!inScope(scope.repos, repoId)) continue;
    waiting.push(
      services.temporal
        .withDeadline(Date.now() + LOCK_QUERY_DEADLINE_MS, () => services.temporal.workflow.getHandle(lock.workflowId).query(lockStateQuery))
        .then((state) => state.waiting.length, () => 0),
    );
  }
  return (await Promise.all(waiting)).reduce((sum, n) => sum + n, 0);
}

/**
 * When the next Temporal Schedule of a job within reach fires. Each job keeps its next due time
 * as Temporal gave it when its schedule was last applied or re-read; only those whose due time
 * has passed since (they fired) are asked of Temporal, so the cost does not grow with the jobs.
 */
async function nextScheduleFiring(ctx: ApiContext, scope: ResourceScope): Promise<Date | null> {
  const repoIds = idFilter(scope.repos);
  const hostIds = idFilter(scope.hosts);
  const scheduled = { scheduleEnabled: true, schedulePaused: false };
  const fields = ['id', 'scheduleDueAt'] as const;
  const [backups, copies] = await Promise.all([
    ctx.state.em.find(BackupJob, { ...scheduled, ...(repoIds ? { repo: repoIds } : {}), ...(hostIds ? { host: hostIds } : {}) }, { fields }),
    ctx.state.em.find(CopyJob, { ...scheduled, ...(repoIds ? { sourceRepo: repoIds } : {}), ...(hostIds ? { destHost: hostIds } : {}) }, { fields }),
  ]);
  const { taskQueue } = ctx.services.temporalConfig;
  const now = Date.now();
  const nextOf = async (dueAt: Date | null, scheduleId: string) =>
    dueAt && dueAt.getTime() > now ? dueAt : ((await describeSchedule(ctx.services, scheduleId))?.info.nextActionTimes[0] ?? null);
  const firings = (await Promise.all([
    ...backups.map((job) => nextOf(job.scheduleDueAt, backupScheduleId(job.id, taskQueue))),
    ...copies.map((job) => nextOf(job.scheduleDueAt, copyScheduleId(job.id, taskQueue))),
  ])).flatMap((date) => (date ? [date.getTime()] : []));
  return firings.length > 0 ? new Date(Math.min(...firings)) : null;
}

/**
 * Counters of the runs within reach: active ones whatever their age, finished ones of the last
 * 24 hours, from the run tables; `dead_letter` are active runs whose workflow Temporal reports
 * closed or gone, `delayed_count` runs queued behind a repository lock.
 */
export async function getJobsSummary(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const scope = authOf(ctx).resources;
  const since = new Date(Date.now() - SUMMARY_WINDOW_MS);
  const connection = em.getConnection();
  const [groups, active, delayed, next] = await Promise.all([
    connection.execute<{ status: RunStatus; n: number; oldest_queued: Date | null; oldest_started: Date | null }[]>(
      runsInReach(em, scope)
        .select('status', em.getKnex().raw('count(*)::int as n'), em.getKnex().raw('min(queued_at) as oldest_queued'), em.getKnex().raw('min(coalesce(started_at, queued_at)) as oldest_started'))
        .where((q) => q.whereIn('status', [...ACTIVE_RUN_STATUSES]).orWhere('finished_at', '>=', since))
        .groupBy('status'),
    ),
    // Deliveries are left out: their relay, not a run record, restarts a missing workflow.
    connection.execute<RunRow[]>(runsInReach(em, scope).select('*').whereIn('status', [...ACTIVE_RUN_STATUSES]).whereNot('kind', 'webhook_delivery')),
    runsWaitingForLocks(ctx.services, scope),
    nextScheduleFiring(ctx, scope),
  ]);
  const states = await Promise.all(active.map((row) => workflowState(ctx.services, recordOf(row))));
  // A dead run counts as such only, not also as queued or running.
  const dead = active.filter((_, i) => !states[i]?.running);
  const group = (status: RunStatus) => groups.find((g) => g.status === status);
  const live = (status: 'queued' | 'running') => Math.max(0, (group(status)?.n ?? 0) - dead.filter((row) => row.status === status).length);
  const iso = (date: Date | null | undefined) => (date ? new Date(date).toISOString() : null);
  respond(ctx, 200, {
    counts: {
      queued: live('queued'),
      running: live('running'),
      completed: group('success')?.n ?? 0,
      failed: group('failed')?.n ?? 0,
      dead_letter: dead.length,
    },
    oldest_queued_at: iso(group('queued')?.oldest_queued),
    oldest_running_at: iso(group('running')?.oldest_started),
    next_available_at: iso(next),
    delayed_count: delayed,
    highest_priority_queued: null,
  } satisfies Schemas['JobsSummary']);
}

/**
 * The pollers of the task queue as Temporal reports them, workflow and activity pollers merged
 * by worker identity. Online when a worker polled recently (see servedByWorker).
 */
export async function getWorkerStatus(ctx: ApiContext): Promise<void> {
  const { temporalConfig } = ctx.services;
  const name = String(ctx.state.query.name ?? 'default');
  const taskQueue = name === 'default' ? temporalConfig.taskQueue : name;
  let pollers;
  try {
    pollers = await taskQueuePollers(ctx.services, taskQueue);
  } catch (error) {
    log.error({ err: error }, `describing task queue ${taskQueue} failed`);
    throw new ApiError(503, 'temporal_unavailable', 'the workflow service is unavailable');
  }
  const byIdentity = new Map<string, Schemas['WorkerStatus']['pollers'][number]>();
  for (const poller of [...pollers.workflow, ...pollers.activity]) {
    const identity = poller.identity ?? '';
    const seen = timestampDate(poller.lastAccessTime);
    const known = byIdentity.get(identity);
    const latest = known?.last_access_time && (!seen || known.last_access_time > seen.toISOString()) ? known.last_access_time : (seen?.toISOString() ?? null);
    byIdentity.set(identity, { identity, last_access_time: latest, rate_per_second: Math.max(known?.rate_per_second ?? 0, poller.ratePerSecond ?? 0) || null });
  }
  const merged = [...byIdentity.values()].sort((a, b) => a.identity.localeCompare(b.identity));
  const heartbeats = merged.map((p) => p.last_access_time).filter((t): t is string => t !== null).sort();
  respond(ctx, 200, {
    name,
    task_queue: taskQueue,
    online: servedByWorker(pollers),
    heartbeat_at: heartbeats.at(-1) ?? null,
    pollers: merged,
    temporal: { address: temporalConfig.address, namespace: temporalConfig.namespace },
  } satisfies Schemas['WorkerStatus']);
}

/**
 * The repositories a pass refreshes: those asked (at most `limit`, each in reach and existing), or
 * the `limit` stalest in reach; stalest catalogue first.
 */
async function passRepositories(ctx: ApiContext, body: RequestBody<'processJobs'>, limit: number): Promise<number[]> {
  const scope = authOf(ctx).resources;
  const asked = body.repo_ids;
  if (asked && asked.length > limit) throw invalidField('repo_ids', `names ${asked.length} repositories, more than limit (${limit})`);
  const repoIds = idFilter(scope.repos);
  const hostIds = idFilter(scope.hosts);
  const where = asked
    ? { id: { $in: asked } }
    : {
      ...(repoIds ? { id: repoIds } : {}),
      // A repository stored on a host (sftp:) is out of reach with that host, as in GET /repos.
      ...(hostIds ? { $or: [{ sshHost: null }, { sshHost: hostIds }] } : {}),
    };
  const repos = await ctx.state.em.find(Repo, where, { fields: ['id', 'snapshotsRefreshedAt'], orderBy: { snapshotsRefreshedAt: 'asc nulls first', id: 'asc' } });
  const missing = (asked ?? []).filter((id) => !repos.some((repo) => repo.id === id));
  if (missing.length > 0) throw invalidField('repo_ids', `repository ${missing.join(', ')} does not exist`);
  return repos.slice(0, limit).map((repo) => repo.id);
}

/** Starts a maintenance pass (`maintenance-<runId>`): one at a time, 409 `run_in_progress` while one is in flight. */
export async function processJobs(ctx: ApiContext): Promise<void> {
  const body = (ctx.request.body ?? {}) as RequestBody<'processJobs'>;
  const limit = body.limit ?? 3;
  const types = body.types ?? ['repo_snapshot_refresh', 'snapshot_full_index'];
  const repoIds = await passRepositories(ctx, body, limit);
  if (isDryRun(ctx)) return respondDryRun(ctx, { repo_ids: repoIds });
  const run = await startOperationRun(ctx.services, ctx.state.em, authOf(ctx), {
    target: { kind: 'maintenance' },
    workflowIdPrefix: 'maintenance',
    params: { limit, types, repo_ids: repoIds },
    workflow: maintenancePass,
    args: (runId) => [{ runId, repoIds }],
    typedSearchAttributes: [{ key: RunKindKey, value: 'maintenance' }],
    busy: 'a maintenance pass is already in progress',
  }, ctx.state.idempotencyKey);
  await respondWithOperationRun(ctx, run);
}

const RECOVERABLE = [
  { entity: BackupJobRun, kind: () => 'backup' },
  { entity: OperationRun, kind: (run: OperationRun) => run.kind },
  { entity: Restore, kind: () => 'restore' },
] as const;
type Recoverable = BackupJobRun | OperationRun | Restore;
type Outcome = { status: 'success' } | { status: 'failed'; code: string; message: string };

/** What a closed workflow ended with; null when it ended without an outcome of its own (terminated, gone): the run is lost. */
async function closedOutcome(services: Services, workflowId: string, status: string): Promise<Outcome | null> {
  if (status === 'COMPLETED') return { status: 'success' };
  if (status === 'TIMED_OUT') return { status: 'failed', code: 'timeout', message: 'the workflow of this run timed out' };
  if (status === 'CANCELLED') return { status: 'failed', code: 'cancelled', message: 'the workflow of this run was cancelled' };
  if (status !== 'FAILED') return null;
  try {
    await services.temporal.workflow.getHandle(workflowId).result();
  } catch (error) {
    const failure = applicationFailureOf(error);
    // A failed run's workflow ends with the run's failure code as its type (runFailure).
    if (failure) return { status: 'failed', code: failure.type ?? 'internal_error', message: failure.message };
    if (error instanceof WorkflowFailedError) return { status: 'failed', code: 'internal_error', message: error.cause?.message ?? error.message };
  }
  return null;
}

/** Records what a run's workflow really ended with; false if the run was closed meanwhile. */
async function recordOutcome(em: EntityManager, entity: (typeof RECOVERABLE)[number]['entity'], run: Recoverable, outcome: Outcome): Promise<boolean> {
  const failure = outcome.status === 'failed' ? { failureCode: outcome.code, failureMessage: outcome.message } : {};
  const closed = await em.nativeUpdate(entity as typeof OperationRun, { id: run.id as string, status: { $in: [...ACTIVE_RUN_STATUSES] } }, { status: outcome.status, finishedAt: new Date(), ...failure });
  if (closed === 0) return false;
  await showOnJob(em, entity, run.id, { status: outcome.status, message: outcome.status === 'failed' ? outcome.message : null });
  return true;
}

/**
 * Reconciles runs recorded as queued or running for longer than `older_than_minutes` with
 * Temporal: a closed workflow's outcome is recorded, a workflow that ended without one (or is
 * gone) makes the run `workflow_lost`; runs whose workflow is still open are left alone.
 */
export async function recoverJobs(ctx: ApiContext): Promise<void> {
  const body = (ctx.request.body ?? {}) as RequestBody<'recoverJobs'>;
  const cutoff = new Date(Date.now() - (body.older_than_minutes ?? 30) * 60_000);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const { em } = ctx.state;
  const stale: FilterQuery<OperationRun> = { ...recordsInReach(authOf(ctx).resources), $or: [{ status: 'queued', queuedAt: { $lt: cutoff } }, { status: 'running', startedAt: { $lt: cutoff } }] };
  const runs: Schemas['JobsRecoverResult']['runs'] = [];
  let checked = 0;
  for (const { entity, kind } of RECOVERABLE) {
    const candidates = (await em.find(entity as typeof OperationRun, stale, { orderBy: { queuedAt: 'asc' } })) as Recoverable[];
    checked += candidates.length;
    await Promise.all(candidates.map(async (run) => {
      const state = await workflowState(ctx.services, run);
      if (state.running) return;
      const outcome = await closedOutcome(ctx.services, run.workflowId, state.status);
      const closed = outcome ? await recordOutcome(em, entity, run, outcome) : await markLost(em, entity, run, state.status);
      if (closed) runs.push({ id: String(run.id), kind: kind(run as OperationRun), workflow_id: run.workflowId, previous_status: run.status, status: outcome?.status ?? 'failed' });
    }));
  }
  respond(ctx, 200, { recovered: runs.length, checked, runs } satisfies Schemas['JobsRecoverResult']);
}
