import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiResponse } from '../support/api-client';
import { startHarness, type Harness } from '../support/harness';
import { expectError, unique } from '../support/expectations';
import { waitFor } from '../support/wait';

/**
 * Retrying a mutation with an Idempotency-Key: replays, conflicts, scope checks before replays,
 * and run triggers that cannot start two runs, against a real worker and restic.
 */
let h: Harness;
let dir: string;
let sourcePath: string;

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-idempotency-'));
  sourcePath = join(dir, 'source');
  await mkdir(sourcePath);
  await writeFile(join(sourcePath, 'file.txt'), 'idempotent\n');
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

const sql = <T>(query: string, params: unknown[] = []) => h.sql<T>(query, params);
const count = (table: string, where?: string, params?: unknown[]) => h.count(table, where, params);
const key = () => `key-${unique()}`;
const newRepo = () => ({ name: `repo-${unique()}`, path: `/srv/idempotency/${unique()}`, password: 'idem-pw' });
const withKey = (k: string, extra: Record<string, string> = {}) => ({ headers: { 'Idempotency-Key': k, ...extra } });

async function localJob(): Promise<number> {
  const repo = await h.api.post('/repos', { ...newRepo(), path: join(dir, `repo-${unique()}`), init: true });
  expect(repo.status).toBe(201);
  const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repo.body.data.id, source_paths: [sourcePath] });
  expect(job.status).toBe(201);
  return job.body.data.id;
}

/**
 * Workflows Temporal holds for a job (every status), by the JobId search attribute, once its
 * visibility store shows `expected` of them (it lags a little behind the starts).
 */
async function workflowsOfJob(jobId: number, expected: number): Promise<string[]> {
  // Other suites share the namespace and number their jobs from 1 too: the task queue is this suite's.
  const query = `JobId = "${jobId}" AND TaskQueue = "${h.config.temporal.taskQueue}"`;
  const list = async () => {
    const ids: string[] = [];
    for await (const workflow of h.services.temporal.workflow.list({ query })) ids.push(workflow.workflowId);
    return ids;
  };
  return (await waitFor(async () => ((await list()).length >= expected ? list() : undefined), `${expected} workflow(s) of job ${jobId}`, 60_000));
}

async function runFinished(jobId: number, runId: string): Promise<void> {
  await waitFor(async () => {
    const run = await h.api.get(`/backup-jobs/${jobId}/runs/${runId}`);
    return ['success', 'failed'].includes(run.body.data.status) ? run : undefined;
  }, `run ${runId} to finish`);
}

describe('replays', () => {
  test('a retried create replays the stored 201 byte for byte, with its Location, and creates nothing more', async () => {
    const k = key();
    const body = newRepo();
    const before = await count('repos');
    const first = await h.api.post('/repos', body, withKey(k));
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replay')).toBeNull();
    const again = await h.api.post('/repos', body, withKey(k));
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replay')).toBe('true');
    expect(again.text).toBe(first.text);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    // X-Idempotency-Key is the same key; the body's key order does not matter.
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const alias = await h.api.post('/repos', reordered, { headers: { 'X-Idempotency-Key': k } });
    expect(alias.text).toBe(first.text);
    expect(await count('repos')).toBe(before + 1);
  });

  test('a retried delete replays its 204 instead of answering 404', async () => {
    const repo = await h.api.post('/repos', newRepo());
    const k = key();
    const first = await h.api.delete(`/repos/${repo.body.data.id}`, withKey(k));
    expect(first.status).toBe(204);
    const again = await h.api.delete(`/repos/${repo.body.data.id}`, withKey(k));
    expect(again.status).toBe(204);
    expect(again.headers.get('idempotent-replay')).toBe('true');
    expect(again.text).toBe('');
    expectError(await h.api.delete(`/repos/${repo.body.data.id}`), 404, 'not_found');
  });

  test('keys belong to a token: another token with the same key makes its own request', async () => {
    const k = key();
    const other = await h.createCaller();
    const first = await h.api.post('/repos', newRepo(), withKey(k));
    const second = await other.api.post('/repos', newRepo(), withKey(k));
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(second.headers.get('idempotent-replay')).toBeNull();
    expect(second.body.data.id).not.toBe(first.body.data.id);
  });

  test('a key is kept api_idempotency_retention_hours: after that the same request runs again', async () => {
    const k = key();
    const body = newRepo();
    const first = await h.api.post('/repos', { ...body }, withKey(k));
    await sql("update api_idempotency_keys set created_at = now() - interval '49 hours' where idempotency_key = ?", [k]);
    const later = await h.api.post('/repos', { ...body, name: `${body.name}-2` }, withKey(k));
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replay')).toBeNull();
    expect(later.body.data.id).not.toBe(first.body.data.id);
  });
});

describe('conflicts', () => {
  test('the same key with another body, path or method is 422 idempotency_key_mismatch, and changes nothing', async () => {
    const k = key();
    const body = newRepo();
    const first = await h.api.post('/repos', body, withKey(k));
    const before = await count('repos');
    expectError(await h.api.post('/repos', { ...body, name: 'another' }, withKey(k)), 422, 'idempotency_key_mismatch');
    expectError(await h.api.post('/hosts', { name: `h-${unique()}`, hostname: 'a.example' }, withKey(k)), 422, 'idempotency_key_mismatch');
    expectError(await h.api.patch(`/repos/${first.body.data.id}`, { name: 'x' }, withKey(k)), 422, 'idempotency_key_mismatch');
    expect(await count('repos')).toBe(before);
    expect(await count('hosts')).toBe(0);
  });

  test('a duplicate while the first request is still in flight is 409 idempotency_in_progress', async () => {
    const k = key();
    const body = newRepo();
    // Whichever of the racing requests reserves the key first runs; the others wait for none of it.
    const racing = await Promise.all(Array.from({ length: 11 }, () => h.api.post('/repos', body, withKey(k))));
    const answered = racing.filter((res) => res.status !== 409);
    for (const res of racing.filter((r) => r.status === 409)) expectError(res, 409, 'idempotency_in_progress');
    expect(answered.length).toBeGreaterThanOrEqual(1);
    for (const res of answered) expect({ status: res.status, text: res.text }).toEqual({ status: 201, text: answered[0]?.text });
    expect(await count('repos', 'name = ?', [body.name])).toBe(1);
    // A request still running elsewhere (another API process) holds its reservation, unanswered.
    const held = key();
    const done = await h.api.post('/repos', body, withKey(held));
    expect(done.status).toBe(201);
    await sql('update api_idempotency_keys set completed_at = null, response_status = null, response_body = null where idempotency_key = ?', [held]);
    const before = await count('repos');
    expectError(await h.api.post('/repos', body, withKey(held)), 409, 'idempotency_in_progress');
    expect(await count('repos')).toBe(before);
  });

  test('a failed request releases its key: the corrected request is not a mismatch', async () => {
    const k = key();
    const job = { name: `job-${unique()}`, repo_id: 999999, source_paths: ['/srv/data'] };
    expectError(await h.api.post('/backup-jobs', job, withKey(k)), 422, 'validation_error');
    const repo = await h.api.post('/repos', newRepo());
    const fixed = await h.api.post('/backup-jobs', { ...job, repo_id: repo.body.data.id }, withKey(k));
    expect(fixed.status).toBe(201);
  });

  test('a dry run neither uses nor reserves the key', async () => {
    const k = key();
    const body = newRepo();
    const dry = await h.api.post('/repos', body, withKey(k, { 'X-Dry-Run': '1' }));
    expect(dry.body.data).toEqual({ dry_run: true });
    const real = await h.api.post('/repos', body, withKey(k));
    expect(real.status).toBe(201);
  });
});

describe('scope checks come before a replay', () => {
  test('a token that lost the repository, or was revoked, gets 403/401 instead of the stored answer', async () => {
    const caller = await h.createCaller();
    const repo = await caller.api.post('/repos', newRepo());
    const k = key();
    const change = { name: `renamed-${unique()}` };
    const first = await caller.api.patch(`/repos/${repo.body.data.id}`, change, withKey(k));
    expect(first.status).toBe(200);
    expect((await caller.api.patch(`/repos/${repo.body.data.id}`, change, withKey(k))).headers.get('idempotent-replay')).toBe('true');
    await sql(`update api_tokens set repo_scope_mode = 'selected', repo_scope_ids = '[]' where id = ?`, [caller.tokenId]);
    expectError(await caller.api.patch(`/repos/${repo.body.data.id}`, change, withKey(k)), 403, 'repo_not_in_scope');
    await sql(`update api_tokens set repo_scope_mode = 'all', revoked_at = now() where id = ?`, [caller.tokenId]);
    expectError(await caller.api.patch(`/repos/${repo.body.data.id}`, change, withKey(k)), 401, 'token_revoked');
  });
});

describe('run triggers', () => {
  test('20 identical triggers at once with one key: one run, one workflow, identical answers', async () => {
    const jobId = await localJob();
    const k = key();
    const responses: ApiResponse[] = await Promise.all(Array.from({ length: 20 }, () => h.api.post(`/backup-jobs/${jobId}/run`, undefined, withKey(k))));
    const accepted = responses.filter((res) => res.status === 202 || res.status === 200);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    for (const res of responses) {
      if (res.status === 409) expectError(res, 409, 'idempotency_in_progress');
      else expect(res.text).toBe(accepted[0]?.text);
    }
    const runId = accepted[0]?.body.data.id as string;
    expect(await count('backup_job_runs', 'job_id = ?', [jobId])).toBe(1);
    await runFinished(jobId, runId);
    const replay = await h.api.post(`/backup-jobs/${jobId}/run`, undefined, withKey(k));
    expect(replay.headers.get('idempotent-replay')).toBe('true');
    expect(replay.text).toBe(accepted[0]?.text);
    expect(await workflowsOfJob(jobId, 1)).toEqual([`backup-job-${jobId}-${runId}`]);
  });

  test('the workflow id comes from the key: even with its rows lost, a retry starts no second run', async () => {
    const jobId = await localJob();
    const k = key();
    const first = await h.api.post(`/backup-jobs/${jobId}/run?wait=60`, undefined, withKey(k));
    expect(first.status).toBe(200);
    expect(first.body.data.status).toBe('success');
    // The database loses both the stored answer and the run.
    await sql('delete from api_idempotency_keys where idempotency_key = ?', [k]);
    await sql('update backup_jobs set last_run_id = null where id = ?', [jobId]);
    await sql('delete from backup_job_runs where job_id = ?', [jobId]);
    const retry = await h.api.post(`/backup-jobs/${jobId}/run`, undefined, withKey(k));
    expect(retry.body.data.id).toBe(first.body.data.id);
    expect(await workflowsOfJob(jobId, 1)).toEqual([first.body.data.workflow_id]);
    // Without a key, a trigger is a new run.
    const fresh = await h.api.post(`/backup-jobs/${jobId}/run?wait=60`);
    expect(fresh.body.data.id).not.toBe(first.body.data.id);
    expect((await workflowsOfJob(jobId, 2)).length).toBe(2);
  });
});
