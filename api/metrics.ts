import type { EntityManager } from '@mikro-orm/postgresql';
import type { Middleware } from 'koa';
import { Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { ApiState } from './context';
import { routeOf } from './middleware/audit-log';

/**
 * Prometheus metrics, in two halves. Request metrics are this API process's own (scrape every
 * process). Run metrics are read from Postgres at scrape time, so they count what every worker
 * did and survive restarts; every API process reports the same values (aggregate with max()).
 * They count the rows kept, which the retention task deletes (`run_history_retention_days`), so
 * they are gauges that can go down, never `_total` counters.
 */

/** Requests answered by this process; `operation` is the operationId (the route template when none matched), never a raw path. */
const processRegistry = new Registry();
const requests = new Counter({
  name: 'bcp_http_requests_total',
  help: 'API requests answered by this process, by operationId, method and status.',
  labelNames: ['operation', 'method', 'status'] as const,
  registers: [processRegistry],
});
const requestSeconds = new Histogram({
  name: 'bcp_http_request_duration_seconds',
  help: 'Time this process took to answer API requests, by operationId and method.',
  labelNames: ['operation', 'method'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
  registers: [processRegistry],
});

/** Counts and times every request once its answer (an error envelope included) is known. */
export function httpMetrics(): Middleware<ApiState> {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const operation = ctx.state.operation?.operationId ?? routeOf(ctx);
      requests.inc({ operation, method: ctx.method, status: ctx.status });
      requestSeconds.observe({ operation, method: ctx.method }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}

const RUN_SECONDS_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400];

/** Every run of every kind: backups, operation runs (copy, repo_check, snapshot_delete, ...), restores. */
const RUNS = `select 'backup' as kind, status, started_at, finished_at from backup_job_runs
  union all select kind, status, started_at, finished_at from operation_runs
  union all select 'restore', status, started_at, finished_at from restores`;

type RunRow = { kind: string; status: string; runs: number; timed: number; seconds: number } & Record<`le_${number}`, number>;

const runQuery = `select kind, status, count(*)::int as runs, count(d)::int as timed, coalesce(sum(d), 0)::float8 as seconds,
  ${RUN_SECONDS_BUCKETS.map((bound, i) => `count(*) filter (where d <= ${bound})::int as le_${i}`).join(', ')}
  from (select kind, status, extract(epoch from finished_at - started_at)::float8 as d from (${RUNS}) runs) timed
  group by kind, status order by kind, status`;

const FINISHED = new Set(['success', 'failed']);

/**
 * A histogram whose buckets come aggregated from SQL: prom-client's Histogram takes one
 * observation at a time, but renders any metric with a `get()` of this shape.
 */
function storedHistogram(name: string, help: string, rows: { labels: Record<string, string>; buckets: number[]; count: number; sum: number }[]): Metric {
  const values = rows.flatMap(({ labels, buckets, count, sum }) => [
    ...buckets.map((value, i) => ({ labels: { ...labels, le: RUN_SECONDS_BUCKETS[i] as number | string }, value, metricName: `${name}_bucket` })),
    { labels: { ...labels, le: '+Inf' }, value: count, metricName: `${name}_bucket` },
    { labels, value: sum, metricName: `${name}_sum` },
    { labels, value: count, metricName: `${name}_count` },
  ]);
  return { name, get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values }) } as unknown as Metric;
}

/** The run, backup and webhook metrics, as Postgres has them now. */
async function storedMetrics(em: EntityManager): Promise<Registry> {
  const sql = <T>(query: string) => em.getConnection().execute<T[]>(query);
  const [runs, [added], deliveries, attempts] = await Promise.all([
    sql<RunRow>(runQuery),
    sql<{ bytes: number }>(`select coalesce(sum((summary->>'data_added')::numeric), 0)::float8 as bytes from backup_job_runs
      where status = 'success' and jsonb_typeof(summary->'data_added') = 'number'`),
    sql<{ state: string; n: number }>('select state, count(*)::int as n from webhook_deliveries group by state order by state'),
    sql<{ outcome: string; n: number }>(`select case when error is null and status between 200 and 299 then 'success'
      when status > 0 then 'http_error' else 'no_response' end as outcome, count(*)::int as n
      from webhook_delivery_attempts group by 1 order by 1`),
  ]);
  const registry = new Registry();
  const registers = [registry];
  const finished = new Gauge({
    name: 'bcp_runs_recorded',
    help: 'Finished runs recorded, by kind and outcome (success, failed); runs past run_history_retention_days are deleted.',
    labelNames: ['kind', 'outcome'],
    registers,
  });
  const active = new Gauge({ name: 'bcp_runs_active', help: 'Runs not finished yet, by kind and status (queued, running).', labelNames: ['kind', 'status'], registers });
  for (const row of runs) {
    if (FINISHED.has(row.status)) finished.set({ kind: row.kind, outcome: row.status }, row.runs);
    else active.set({ kind: row.kind, status: row.status }, row.runs);
  }
  registry.registerMetric(storedHistogram(
    'bcp_run_duration_seconds',
    'Time the finished runs recorded took from start to finish, by kind and outcome; runs past run_history_retention_days are deleted, so its counts can go down: read it with histogram_quantile over its current buckets, not rate().',
    runs.filter((row) => FINISHED.has(row.status) && row.timed > 0).map((row) => ({
      labels: { kind: row.kind, outcome: row.status },
      buckets: RUN_SECONDS_BUCKETS.map((_, i) => row[`le_${i}`]),
      count: row.timed,
      sum: row.seconds,
    })),
  ));
  new Gauge({
    name: 'bcp_backup_data_added_bytes',
    help: 'Bytes added to repositories by the successful backup runs recorded (restic data_added); runs past run_history_retention_days are deleted.',
    registers,
  }).set(added?.bytes ?? 0);
  const byState = new Gauge({ name: 'bcp_webhook_deliveries', help: 'Webhook deliveries by state (pending, retrying, delivered, failed).', labelNames: ['state'], registers });
  for (const row of deliveries) byState.set({ state: row.state }, row.n);
  const tried = new Gauge({
    name: 'bcp_webhook_delivery_attempts_recorded',
    help: 'Webhook delivery attempts recorded, by outcome (success, http_error, no_response); finished deliveries past run_history_retention_days are deleted with their attempts.',
    labelNames: ['outcome'],
    registers,
  });
  for (const row of attempts) tried.set({ outcome: row.outcome }, row.n);
  return registry;
}

/** The Prometheus text exposition of everything above. */
export async function scrapeMetrics(em: EntityManager): Promise<{ contentType: string; text: string }> {
  const registry = Registry.merge([processRegistry, await storedMetrics(em)]);
  return { contentType: registry.contentType, text: await registry.metrics() };
}
