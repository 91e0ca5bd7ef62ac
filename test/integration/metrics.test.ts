import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from '../../common/log';
import { expectError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';
import { killWorkerProcess, startWorkerProcess } from '../support/worker-process';

/**
 * GET /metrics (Prometheus, stats:read) and the JSON logs: request counters by operationId and
 * status, run counters read from the database after real runs, and the request id carried from
 * the request into its access log line, the memo of the workflow it started and the worker's
 * log of that workflow. The worker is a process of its own, as in production, so its stdout is
 * its JSON log.
 */
let h: Harness;
let worker: ChildProcess;
let dir: string;
const workerLines: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-metrics-'));
  h = await startHarness({ worker: false });
  // debug: the SDK logs each workflow and activity completion at that level.
  worker = await startWorkerProcess(h, { LOG_LEVEL: 'debug' });
  let pending = '';
  worker.stdout?.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop() ?? '';
    workerLines.push(...lines.filter(Boolean));
  });
});
afterAll(async () => {
  if (worker) await killWorkerProcess(worker);
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** One sample of a scrape: the value of `name` with exactly `labels`; 0 when absent (a counter never incremented). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort())) return Number(match[3]);
  }
  return 0;
}

/** A scrape with the admin token. The harness client only takes JSON and HTML, so this one is a plain fetch. */
async function scrape(): Promise<string> {
  const response = await fetch(`${h.api.baseUrl}/api/v1/metrics`, { headers: { authorization: `Bearer ${h.adminToken}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return response.text();
}

async function repository(): Promise<{ id: number; path: string }> {
  const path = join(dir, `repo-${unique()}`);
  const created = await h.api.post('/repos', { name: `repo-${unique()}`, path, password: `pw-${unique()}`, init: true });
  expect(created.status).toBe(201);
  return { id: created.body.data.id, path };
}

/** JSON lines that the API writes to stdout while `work` runs. */
async function apiLogLines(work: () => Promise<void>): Promise<Record<string, unknown>[]> {
  const written: string[] = [];
  const level = log.level;
  log.level = 'info';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(chunk.toString());
    return true;
  });
  try {
    await work();
  } finally {
    spy.mockRestore();
    log.level = level;
  }
  return written.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('GET /metrics', () => {
  test('needs a token with stats:read that reaches every repository and host', async () => {
    expectError(await h.api.get('/metrics', { token: null }), 401, 'missing_token');
    expectError(await h.api.get('/metrics', { token: await h.createToken({ scopes: ['repos:read'] }) }), 403, 'insufficient_scope', { required_scope: 'stats:read' });
    const limited = await h.createCaller({ token: { scopes: ['stats:read'], repoScopeMode: 'selected', repoScopeIds: [1] } });
    expectError(await limited.api.get('/metrics'), 403, 'repo_not_in_scope');
    const allowed = await fetch(`${h.api.baseUrl}/api/v1/metrics`, { headers: { authorization: `Bearer ${await h.createToken({ scopes: ['stats:read'] })}` } });
    expect(allowed.status).toBe(200);
  });

  test('counts requests by operationId, method and status, and times them', async () => {
    const labels = { operation: 'getMe', method: 'GET', status: '200' };
    const missing = { operation: 'getRepo', method: 'GET', status: '404' };
    const before = await scrape();
    for (let i = 0; i < 3; i += 1) expect((await h.api.get('/me')).status).toBe(200);
    expectError(await h.api.get('/repos/999999'), 404, 'not_found');
    const after = await scrape();
    expect(sample(after, 'bcp_http_requests_total', labels) - sample(before, 'bcp_http_requests_total', labels)).toBe(3);
    expect(sample(after, 'bcp_http_requests_total', missing) - sample(before, 'bcp_http_requests_total', missing)).toBe(1);
    const timed = { operation: 'getMe', method: 'GET' };
    expect(sample(after, 'bcp_http_request_duration_seconds_count', timed) - sample(before, 'bcp_http_request_duration_seconds_count', timed)).toBe(3);
    expect(sample(after, 'bcp_http_request_duration_seconds_bucket', { ...timed, le: '+Inf' })).toBe(sample(after, 'bcp_http_request_duration_seconds_count', timed));
    // Never a raw path with an id in it.
    expect(after).not.toContain('/repos/999999');
  });

  test('counts finished runs by kind and outcome, their durations and the bytes backups added, from the database', async () => {
    const before = await scrape();
    const repo = await repository();
    const source = join(dir, `src-${unique()}`);
    await mkdir(source);
    await writeFile(join(source, 'data.bin'), randomBytes(64 * 1024));
    const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repo.id, source_paths: [source] });
    expect(job.status).toBe(201);
    const backup = await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=90`);
    expect(backup.body.data.status).toBe('success');
    const check = await h.api.post(`/repos/${repo.id}/check?wait=90`);
    expect(check.body.data.status).toBe('success');

    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('bcp_runs_recorded', { kind: 'backup', outcome: 'success' })).toBe(1);
    expect(delta('bcp_runs_recorded', { kind: 'repo_check', outcome: 'success' })).toBe(1);
    expect(delta('bcp_run_duration_seconds_count', { kind: 'backup', outcome: 'success' })).toBe(1);
    expect(delta('bcp_run_duration_seconds_bucket', { kind: 'backup', outcome: 'success', le: '+Inf' })).toBe(1);
    expect(delta('bcp_run_duration_seconds_sum', { kind: 'backup', outcome: 'success' })).toBeGreaterThan(0);
    // restic's data_added counts what it wrote, compressed: at least part of 64 KiB of random data.
    expect(delta('bcp_backup_data_added_bytes')).toBeGreaterThan(32 * 1024);
    expect(after).toMatch(/^# TYPE bcp_run_duration_seconds histogram$/m);
    // Counted from rows that the retention task deletes, so gauges: a counter must never go down.
    for (const name of ['bcp_runs_recorded', 'bcp_backup_data_added_bytes', 'bcp_webhook_delivery_attempts_recorded']) {
      expect(after).toMatch(new RegExp(`^# TYPE ${name} gauge$`, 'm'));
      expect(after).toMatch(new RegExp(`^# HELP ${name} .*run_history_retention_days`, 'm'));
    }
    expect(after).not.toMatch(/^bcp_(runs|backup_data_added_bytes|webhook_delivery_attempts)_total/m);
  });
});

describe('the request id', () => {
  test('is in the access log line, the memo of the workflow the request started and the worker log of that run', async () => {
    const repo = await repository();
    const requestId = `metrics-test-${unique()}`;
    let workflowId = '';
    const lines = await apiLogLines(async () => {
      const res = await h.api.post(`/repos/${repo.id}/check`, {}, { headers: { 'x-request-id': requestId } });
      expect(res.status).toBe(202);
      expect(res.headers.get('x-request-id')).toBe(requestId);
      workflowId = res.body.data.workflow_id;
    });

    const access = lines.filter((line) => line.request_id === requestId && line.msg === 'request');
    expect(access).toEqual([
      {
        level: 'info', time: expect.any(String), msg: 'request', request_id: requestId,
        method: 'POST', operation_id: 'checkRepo', route: '/repos/{id}/check', status: 202,
        duration_ms: expect.any(Number), token_id: expect.any(Number),
      },
    ]);
    expect(Number.isNaN(Date.parse(access[0]?.time as string))).toBe(false);
    expect(JSON.stringify(lines)).not.toContain(h.adminToken);
    expect(JSON.stringify(lines).toLowerCase()).not.toContain('authorization');

    const description = await h.services.temporal.workflow.getHandle(workflowId).describe();
    expect(description.memo).toMatchObject({ request_id: requestId });

    // The SDK's debug lines of the run: the workflow's own, and those of the activities it scheduled.
    const tagged = await waitFor(async () => {
      const found = workerLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.request_id === requestId);
      const completed = (fields: Record<string, unknown>) => found.find((line) => Object.entries(fields).every(([key, value]) => line[key] === value));
      const workflowLine = completed({ msg: 'Workflow completed', workflowId });
      const activityLine = completed({ msg: 'Activity completed', workflowId, activityType: 'checkRepository' });
      return workflowLine && activityLine ? [workflowLine, activityLine] : undefined;
    }, 'worker log lines of the check carrying its request id', 90_000);
    for (const line of tagged) expect(line).toMatchObject({ level: 'debug', time: expect.any(String), workflowId });
  });

  test('every line the worker writes to stdout is JSON with level, time and msg', () => {
    expect(workerLines.length).toBeGreaterThan(0);
    for (const line of workerLines) {
      expect(JSON.parse(line)).toMatchObject({ level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/), time: expect.any(String), msg: expect.any(String) });
    }
  });
});
