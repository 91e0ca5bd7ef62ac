import { randomBytes, randomUUID } from 'node:crypto';
import type { ApiClient } from '../support/api-client';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { expectError, unique } from '../support/expectations';

/**
 * GET /stats/summary and GET /stats/repo-runtime over a known fleet: eight repositories, one in
 * each runtime state (two ok), with snapshots, backup runs and checks written straight into the
 * catalogue and run tables. Counts are exact, each agrees with the matching list for the same
 * caller, and a scoped caller neither sees nor counts what is out of its reach.
 */
let h: Harness;
let T: number;
const at = (hoursAgo: number) => new Date(T - hoursAgo * 3_600_000);

const repo = { ok: 0, stale: 0, failed: 0, checkFailed: 0, empty: 0, pending: 0, unknown: 0, sftp: 0 };
const names = {} as Record<keyof typeof repo, string>;
const host = { a: 0, b: 0 };
let alice: Caller;
let bob: Caller;
let viewer: Caller;

async function created(path: string, body: Record<string, unknown>): Promise<number> {
  const res = await h.api.post(path, body);
  expect(res.status).toBe(201);
  return res.body.data.id;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

async function snapshot(repoId: number, time: Date): Promise<void> {
  const id = hex(32);
  await h.sql(
    `insert into snapshots (repo_id, id, short_id, time, time_text, tree, paths, hostname, username) values (?, ?, ?, ?, ?, ?, '["/etc"]', 'node', 'root')`,
    [repoId, id, id.slice(0, 8), time, time.toISOString(), hex(32)],
  );
}

async function backupRun(jobId: number, repoId: number, status: string, finished: Date | null): Promise<void> {
  const id = randomUUID();
  await h.sql(
    `insert into backup_job_runs (id, job_id, repo_id, status, trigger, workflow_id, queued_at, finished_at) values (?, ?, ?, ?, 'api', ?, ?, ?)`,
    [id, jobId, repoId, status, `backup-job-${jobId}-${id}`, finished ?? new Date(T), finished],
  );
}

async function check(repoId: number, status: string, finished: Date): Promise<void> {
  const id = randomUUID();
  await h.sql(
    `insert into operation_runs (id, kind, status, trigger, workflow_id, repo_id, queued_at, finished_at) values (?, 'repo_check', ?, 'api', ?, ?, ?, ?)`,
    [id, status, `repo-check-${repoId}-${id}`, repoId, finished, finished],
  );
}

async function restore(repoId: number, hostId: number | null): Promise<void> {
  await h.sql(
    `insert into restores (repo_id, repo_name, snapshot_id, host_id, destination_mode, append_context_subdir, mode, status, trigger, started_by, workflow_id, finished_at)
     values (?, 'r', ?, ?, 'managed', false, 'full', 'success', 'api', 'test', ?, now())`,
    [repoId, hex(32), hostId, `restore-${randomUUID()}`],
  );
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  T = Date.now();
  for (const key of Object.keys(repo) as (keyof typeof repo)[]) {
    names[key] = `stats-${key}-${unique()}`;
    repo[key] = await created('/repos', { name: names[key], path: `/srv/stats/${unique()}`, password: 'stats-pw' });
  }
  for (const key of Object.keys(host) as (keyof typeof host)[]) {
    const keyId = await created('/ssh-keys', { name: `key-${key}-${unique()}`, host: `${key}.stats.internal` });
    host[key] = await created('/hosts', { name: `host-${key}-${unique()}`, hostname: `${key}.stats.internal`, ssh_key_id: keyId });
  }
  // The sftp repository lives on host b: out of reach of a caller limited to host a.
  await h.sql('update repos set ssh_host_id = ? where id = ?', [host.b, repo.sftp]);
  await h.sql('update repos set alert_hours = 6 where id = ?', [repo.stale]);

  const job = (name: string, repoId: number, hostId: number | null) =>
    created('/backup-jobs', { name: `${name}-${unique()}`, repo_id: repoId, ...(hostId ? { host_id: hostId } : {}), source_paths: ['/etc'] });
  const jobs = {
    ok: await job('ok', repo.ok, host.a),
    okLocal: await job('ok-local', repo.ok, null),
    stale: await job('stale', repo.stale, host.a),
    failed: await job('failed', repo.failed, null),
    pending: await job('pending', repo.pending, null),
  };
  await created('/copy-jobs', { name: `copy-failed-${unique()}`, source_repo_id: repo.failed, dest_path: `/srv/copies/${unique()}`, dest_password: 'copy-pw' });
  await created('/copy-jobs', { name: `copy-ok-${unique()}`, source_repo_id: repo.ok, dest_path: `/srv/copies/${unique()}`, dest_password: 'copy-pw' });

  await snapshot(repo.ok, at(26));
  await snapshot(repo.ok, at(2));
  await snapshot(repo.stale, at(10));
  await snapshot(repo.failed, at(4));
  await snapshot(repo.checkFailed, at(1));
  await snapshot(repo.sftp, at(3));
  for (const [id, hours] of [[repo.ok, 0.5], [repo.stale, 0.5], [repo.failed, 3], [repo.checkFailed, 3], [repo.empty, 1], [repo.sftp, 0.5]] as const) {
    await h.sql('update repos set snapshots_refreshed_at = ? where id = ?', [at(hours), id]);
  }

  // ok: a failure followed by a success; a deleted job's failure no longer speaks for the repository.
  await backupRun(jobs.ok, repo.ok, 'failed', at(5));
  await backupRun(jobs.ok, repo.ok, 'success', at(2));
  await backupRun(999_999, repo.ok, 'failed', at(1));
  await check(repo.ok, 'failed', at(6));
  await check(repo.ok, 'success', at(3));
  await backupRun(jobs.stale, repo.stale, 'success', at(10));
  // error: the latest finished run failed.
  await backupRun(jobs.failed, repo.failed, 'success', at(4));
  await backupRun(jobs.failed, repo.failed, 'failed', at(1));
  // error: the latest check failed.
  await check(repo.checkFailed, 'success', at(5));
  await check(repo.checkFailed, 'failed', at(2));
  // pending: no snapshot yet, a first backup queued.
  await backupRun(jobs.pending, repo.pending, 'queued', null);

  await restore(repo.ok, host.a);
  await restore(repo.ok, null);
  await restore(repo.failed, null);

  alice = await h.createCaller({
    token: {
      scopes: ['stats:read', 'repos:read', 'hosts:read', 'backup_jobs:read', 'copy_jobs:read', 'restores:read', 'users:read'],
      repoScopeMode: 'selected', repoScopeIds: [repo.ok, repo.stale, repo.sftp], hostScopeMode: 'selected', hostScopeIds: [host.a],
    },
  });
  bob = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repo.failed, repo.empty] } });
  viewer = await h.createCaller({ user: { role: 'viewer' }, token: { scopes: ['stats:read'] } });
});
afterAll(async () => {
  await h?.stop();
});

const breakdown = (counts: Partial<Record<string, number>>) => ({ ok: 0, warning: 0, error: 0, no_snap: 0, pending: 0, unknown: 0, ...counts });

describe('GET /stats/summary', () => {
  test('the administrator counts everything, users included, and the breakdown adds up to the repositories', async () => {
    const res = await h.api.get('/stats/summary');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: {
        repos: 8, hosts: 2, backup_jobs: 5, copy_jobs: 2, restores: 3, users: await h.count('users'),
        repo_status_breakdown: breakdown({ ok: 2, warning: 1, error: 2, no_snap: 1, pending: 1, unknown: 1 }),
      },
      meta: null,
      error: null,
    });
    expect(res.body.data.users).toBe(4);
  });

  test('a token-scoped caller counts only its repositories, hosts, jobs and restores, and no users', async () => {
    const res = await alice.api.get('/stats/summary');
    expect(res.body.data).toEqual({
      repos: 2, hosts: 1, backup_jobs: 2, copy_jobs: 0, restores: 1, users: null,
      repo_status_breakdown: breakdown({ ok: 1, warning: 1 }),
    });
  });

  test('a user-scoped caller counts only its repositories (hosts unlimited), and no users', async () => {
    const res = await bob.api.get('/stats/summary');
    expect(res.body.data).toEqual({
      repos: 2, hosts: 2, backup_jobs: 1, copy_jobs: 1, restores: 1, users: null,
      repo_status_breakdown: breakdown({ error: 1, no_snap: 1 }),
    });
  });

  test('an unscoped viewer counts everything but users, which it may not read', async () => {
    const res = await viewer.api.get('/stats/summary');
    expect(res.body.data).toMatchObject({ repos: 8, hosts: 2, backup_jobs: 5, copy_jobs: 2, restores: 3, users: null });
  });

  test.each([['/repos', 'repos'], ['/hosts', 'hosts'], ['/backup-jobs', 'backup_jobs'], ['/copy-jobs', 'copy_jobs'], ['/restores', 'restores']] as const)(
    'each count is the total %s gives the same caller',
    async (path, field) => {
      for (const caller of [h.api, alice.api, bob.api]) {
        const [summary, list] = await Promise.all([caller.get('/stats/summary'), caller.get(`${path}?per_page=1`)]);
        expect(list.status).toBe(200);
        expect({ path, count: summary.body.data[field] }).toEqual({ path, count: list.body.meta.total });
      }
    },
  );

  test('a token without stats:read is refused', async () => {
    const other = await h.createCaller({ token: { scopes: ['repos:read'] } });
    expectError(await other.api.get('/stats/summary'), 403, 'insufficient_scope');
    expectError(await other.api.get('/stats/repo-runtime'), 403, 'insufficient_scope');
  });
});

describe('GET /stats/repo-runtime', () => {
  async function rows(api: ApiClient, query = ''): Promise<any[]> {
    const res = await api.get(`/stats/repo-runtime?per_page=200${query}`);
    expect(res.status).toBe(200);
    return res.body.data;
  }

  test('one row per repository, by id, with its catalogue, its derived status and when its facts changed', async () => {
    const all = await rows(h.api);
    const row = (key: keyof typeof repo, snapshots: number, last: Date | null, status: string, updated: Date | null) => ({
      repo_id: repo[key], repo_name: names[key], snapshot_count: snapshots, last_snapshot_time: last?.toISOString() ?? null,
      hours_ago: last === null ? null : expect.any(Number), status, updated_at: updated?.toISOString() ?? null,
    });
    expect(all).toEqual([
      row('ok', 2, at(2), 'ok', at(0.5)),
      row('stale', 1, at(10), 'warning', at(0.5)),
      row('failed', 1, at(4), 'error', at(1)),
      row('checkFailed', 1, at(1), 'error', at(2)),
      row('empty', 0, null, 'no_snap', at(1)),
      row('pending', 0, null, 'pending', null),
      row('unknown', 0, null, 'unknown', null),
      row('sftp', 1, at(3), 'ok', at(0.5)),
    ]);
    // Hours since the newest snapshot, at the time of the request (a few seconds after the fixture).
    const hours = Object.fromEntries(all.map((r) => [r.repo_id, r.hours_ago]));
    for (const [id, expected] of [[repo.ok, 2], [repo.stale, 10], [repo.failed, 4], [repo.checkFailed, 1], [repo.sftp, 3]] as const) {
      expect(hours[id]).toBeGreaterThanOrEqual(expected);
      expect(hours[id]).toBeLessThan(expected + 0.1);
      expect(Math.round(hours[id] * 100) / 100).toBe(hours[id]);
    }
  });

  test('filters by status and pages after filtering', async () => {
    expect((await rows(h.api, '&status=error')).map((r) => r.repo_id)).toEqual([repo.failed, repo.checkFailed]);
    expect((await rows(h.api, '&status=pending')).map((r) => r.repo_id)).toEqual([repo.pending]);
    const first = await h.api.get('/stats/repo-runtime?per_page=3');
    expect(first.body.meta).toEqual({ page: 1, per_page: 3, total: 8, total_pages: 3 });
    expect(first.body.data.map((r: { repo_id: number }) => r.repo_id)).toEqual([repo.ok, repo.stale, repo.failed]);
    const last = await h.api.get('/stats/repo-runtime?per_page=3&page=3');
    expect(last.body.data.map((r: { repo_id: number }) => r.repo_id)).toEqual([repo.unknown, repo.sftp]);
    const ok = await h.api.get('/stats/repo-runtime?status=ok&per_page=1&page=2');
    expect(ok.body.meta).toEqual({ page: 2, per_page: 1, total: 2, total_pages: 2 });
    expect(ok.body.data.map((r: { repo_id: number }) => r.repo_id)).toEqual([repo.sftp]);
    expect((await h.api.get('/stats/repo-runtime?status=sleeping')).status).toBe(422);
  });

  test('a scoped caller sees the rows of its repositories only, and nothing of the others', async () => {
    const [aliceRes, bobRes] = await Promise.all([alice.api.get('/stats/repo-runtime?per_page=200'), bob.api.get('/stats/repo-runtime?per_page=200')]);
    expect(aliceRes.body.data.map((r: { repo_id: number; status: string }) => [r.repo_id, r.status])).toEqual([[repo.ok, 'ok'], [repo.stale, 'warning']]);
    expect(aliceRes.body.meta.total).toBe(2);
    expect(bobRes.body.data.map((r: { repo_id: number; status: string }) => [r.repo_id, r.status])).toEqual([[repo.failed, 'error'], [repo.empty, 'no_snap']]);
    expect((await alice.api.get('/stats/repo-runtime?status=error')).body).toMatchObject({ data: [], meta: { total: 0 } });
    const summaries = [(await alice.api.get('/stats/summary')).text, (await bob.api.get('/stats/summary')).text];
    const outside = { alice: ['failed', 'checkFailed', 'empty', 'pending', 'unknown', 'sftp'], bob: ['ok', 'stale', 'checkFailed', 'pending', 'unknown', 'sftp'] } as const;
    for (const [who, text] of [['alice', aliceRes.text + summaries[0]], ['bob', bobRes.text + summaries[1]]] as const) {
      for (const key of outside[who]) expect({ who, leaked: text.includes(names[key]) }).toEqual({ who, leaked: false });
    }
  });

  test('the status follows new facts: a successful backup clears an error, a newer snapshot a warning', async () => {
    const job = await h.sql<{ id: number }>('select id from backup_jobs where repo_id = ?', [repo.failed]);
    await backupRun(job[0]?.id as number, repo.failed, 'success', new Date());
    await snapshot(repo.stale, new Date());
    const now = Object.fromEntries((await rows(h.api)).map((r) => [r.repo_id, r.status]));
    expect([now[repo.failed], now[repo.stale]]).toEqual(['ok', 'ok']);
    expect((await h.api.get('/stats/summary')).body.data.repo_status_breakdown).toEqual(breakdown({ ok: 4, error: 1, no_snap: 1, pending: 1, unknown: 1 }));
  });
});
