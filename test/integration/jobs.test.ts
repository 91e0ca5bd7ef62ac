import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ISO, expectError, expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { resticAsync } from '../support/restic';
import { stackEnv } from '../support/stack-env';
import { waitFor } from '../support/wait';

/**
 * The /jobs routes against a real worker, real restic repositories and the Temporal dev server:
 * counters and the recent-runs list after real runs, the worker's pollers, a maintenance pass
 * that refreshes catalogues, and the reconciliation of runs whose workflow closed or vanished.
 * The worker's restic holds `snapshots` while the gate file is missing, so a pass can be kept running.
 */
let h: Harness;
let dir: string;
let gate: string;
const password = 'jobs-test-pw';
let repoA: { id: number; path: string };
let repoB: { id: number; path: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-jobs-'));
  gate = join(dir, 'gate');
  await writeFile(gate, '');
  const wrapper = join(dir, 'restic');
  await writeFile(
    wrapper,
    `#!/bin/sh
for arg in "$@"; do if [ "$arg" = snapshots ]; then while [ ! -e ${gate} ]; do sleep 0.05; done; break; fi; done
exec ${stackEnv().resticBinary} "$@"
`,
  );
  await chmod(wrapper, 0o755);
  h = await startHarness({ resticBinary: wrapper });
  repoA = await repository();
  repoB = await repository();
});
afterAll(async () => {
  await writeFile(gate, '').catch(() => undefined);
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function repository(): Promise<{ id: number; path: string }> {
  const path = join(dir, `repo-${unique()}`);
  const created = await h.api.post('/repos', { name: `repo-${unique()}`, path, password, init: true });
  expect(created.status).toBe(201);
  return { id: created.body.data.id, path };
}

/** A directory with one random file, to back up. */
async function source(): Promise<string> {
  const path = join(dir, `src-${unique()}`);
  await mkdir(path);
  await writeFile(join(path, 'data.bin'), randomBytes(2048));
  return path;
}

/** A snapshot made with restic directly (so the API's catalogue does not know it yet); its id. */
async function backupDirectly(repoPath: string): Promise<string> {
  const made = await resticAsync(repoPath, password, ['backup', '--json', await source()]);
  expect(made.status).toBe(0);
  return made.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary').snapshot_id;
}

const summary = async () => {
  const res = await h.api.get('/jobs/summary');
  expect(res.status).toBe(200);
  return res.body.data;
};

/** A pass kept running: its restic waits for the gate. Call the returned function to let it finish. */
async function blockedPass(): Promise<{ run: any; release: () => Promise<any> }> {
  await rm(gate, { force: true });
  const started = await h.api.post('/jobs/process', { limit: 1, repo_ids: [repoB.id] });
  expect(started.status).toBe(202);
  const run = started.body.data;
  await waitFor(async () => ((await h.sql(`select status from operation_runs where id = ?`, [run.id]))[0]?.status === 'running' ? true : undefined), 'the pass to start');
  return {
    run,
    release: async () => {
      await writeFile(gate, '');
      return waitFor(async () => {
        const [row] = await h.sql<{ status: string }>(`select status from operation_runs where id = ?`, [run.id]);
        return row?.status === 'running' || row?.status === 'queued' ? undefined : row;
      }, 'the pass to finish');
    },
  };
}

describe('GET /jobs/worker', () => {
  test('lists the pollers of the task queue while the worker runs; an unknown queue has none', async () => {
    const status = await waitFor(async () => {
      const res = await h.api.get('/jobs/worker');
      return res.body.data?.online ? res : undefined;
    }, 'the worker to poll', 30_000);
    expect(status.status).toBe(200);
    expect(status.body.data).toMatchObject({
      name: 'default',
      task_queue: h.config.temporal.taskQueue,
      online: true,
      temporal: { address: h.config.temporal.address, namespace: h.config.temporal.namespace },
    });
    const { pollers, heartbeat_at: heartbeat } = status.body.data;
    expect(pollers.length).toBeGreaterThanOrEqual(1);
    for (const poller of pollers) {
      expect(poller.identity).toEqual(expect.any(String));
      expect(poller.last_access_time).toMatch(ISO);
      expect(Date.now() - Date.parse(poller.last_access_time)).toBeLessThan(5 * 60_000);
    }
    expect(heartbeat).toMatch(ISO);
    expect(pollers.map((p: { last_access_time: string }) => p.last_access_time)).toContain(heartbeat);

    const other = await h.api.get(`/jobs/worker?name=nobody-polls-${unique()}`);
    expect(other.status).toBe(200);
    expect(other.body.data).toMatchObject({ online: false, heartbeat_at: null, pollers: [] });
    expectError(await h.api.get('/jobs/worker?name=not%20a%20queue'), 422, 'validation_error');
  });
});

describe('POST /jobs/process', () => {
  test('refreshes the catalogue of the stalest repositories, up to the limit, as a maintenance run', async () => {
    const first = await backupDirectly(repoA.path);
    const second = await backupDirectly(repoA.path);
    await h.sql(`update repos set snapshots_refreshed_at = null where id = ?`, [repoA.id]);
    await h.sql(`update repos set snapshots_refreshed_at = now() where id = ?`, [repoB.id]);
    expect(await h.count('snapshots', 'repo_id = ?', [repoA.id])).toBe(0);

    const res = await h.api.post('/jobs/process?wait=60', { limit: 1 });
    expect(res.status).toBe(200);
    const run = res.body.data;
    expect(run).toMatchObject({
      kind: 'maintenance', status: 'success', trigger: 'api', repo_id: null, failure: null, warnings: [],
      workflow_id: `maintenance-${run.id}`,
      result: { repos_refreshed: 1, snapshots_indexed: 2, repos: [{ repo_id: repoA.id, snapshots: 2 }] },
      links: { self: null, resource: '/api/v1/repos', temporal_ui: expect.stringContaining(encodeURIComponent(run.workflow_id)) },
    });
    const listed = await h.api.get(`/repos/${repoA.id}/snapshots`);
    expect(listed.body.data.map((s: { id: string }) => s.id).sort()).toEqual([first, second].sort());
    expect((await h.api.get(`/repos/${repoA.id}`)).body.data.snapshots_refreshed_at).toMatch(ISO);
    const [params] = await h.sql<{ params: Record<string, unknown> }>(`select params from operation_runs where id = ?`, [run.id]);
    expect(params?.params).toEqual({ limit: 1, types: ['repo_snapshot_refresh', 'snapshot_full_index'], repo_ids: [repoA.id] });
    const history = await h.services.temporal.workflow.getHandle(run.workflow_id).fetchHistory();
    const refreshes = history.events?.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'refreshSnapshotCatalogue') ?? [];
    expect(refreshes).toHaveLength(1);
  });

  test('one pass at a time: 409 run_in_progress while one is in flight, nothing new started', async () => {
    const { run, release } = await blockedPass();
    try {
      const before = await h.count('operation_runs', `kind = 'maintenance'`);
      expectError(await h.api.post('/jobs/process', {}), 409, 'run_in_progress', { run_id: run.id });
      expect(await h.count('operation_runs', `kind = 'maintenance'`)).toBe(before);
      const counters = await summary();
      expect(counters.counts.running).toBeGreaterThanOrEqual(1);
      expect(counters.oldest_running_at).toMatch(ISO);
      const running = await h.api.get('/jobs/recent?status=running&kind=maintenance');
      expect(running.body.data.map((r: { id: string }) => r.id)).toEqual([run.id]);
    } finally {
      expect(await release()).toMatchObject({ status: 'success' });
    }
  });

  test('repositories out of scope are 403, unknown ones 422; nothing is started', async () => {
    const scoped = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [repoB.id] } });
    const before = await h.count('operation_runs');
    expectError(await scoped.api.post('/jobs/process', { repo_ids: [repoA.id] }), 403, 'repo_not_in_scope');
    expectError(await h.api.post('/jobs/process', { repo_ids: [999_999_999] }), 422, 'validation_error');
    expectError(await h.api.post('/jobs/process', { limit: 21 }), 422, 'validation_error');
    expect(await h.count('operation_runs')).toBe(before);
    const dry = await scoped.api.post('/jobs/process', {}, { headers: { 'X-Dry-Run': '1' } });
    expect(dry.body.data).toEqual({ dry_run: true, repo_ids: [repoB.id] });
  });

  test('more repositories asked than limit are 422 on repo_ids, an id beyond 32 bits too; nothing is started', async () => {
    const before = await h.count('operation_runs');
    expectFieldError(await h.api.post('/jobs/process', { limit: 1, repo_ids: [repoA.id, repoB.id] }), 'repo_ids');
    expectFieldError(await h.api.post('/jobs/process', { repo_ids: [repoA.id, repoB.id, repoA.id + repoB.id, 1_000_000] }), 'repo_ids');
    expectFieldError(await h.api.post('/jobs/process', { repo_ids: [3000000000] }), 'repo_ids[0]');
    expect(await h.count('operation_runs')).toBe(before);
  });

  test('a repository stored on a host out of the caller\u2019s scope is 403 host_not_in_scope, as on its own routes', async () => {
    const hostId = async () => {
      const res = await h.api.post('/hosts', { name: `host-${unique()}`, hostname: 'jobs.example.internal' });
      expect(res.status).toBe(201);
      return res.body.data.id as number;
    };
    const [storage, other] = [await hostId(), await hostId()];
    const created = await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, `repo-${unique()}`), password });
    expect(created.status).toBe(201);
    const stored: number = created.body.data.id;
    await h.sql('update repos set ssh_host_id = ? where id = ?', [storage, stored]);
    try {
      const hostScoped = await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [other] } });
      const before = await h.count('operation_runs');
      expectError(await hostScoped.api.post('/jobs/process', { repo_ids: [stored] }), 403, 'host_not_in_scope');
      expectError(await hostScoped.api.post('/jobs/process', { repo_ids: [repoA.id, stored] }), 403, 'host_not_in_scope');
      expect(await h.count('operation_runs')).toBe(before);
      // A repository on no host stays in reach.
      const dry = await hostScoped.api.post('/jobs/process', { repo_ids: [repoA.id] }, { headers: { 'X-Dry-Run': '1' } });
      expect(dry.body.data).toEqual({ dry_run: true, repo_ids: [repoA.id] });
    } finally {
      await h.sql('delete from repos where id = ?', [stored]);
    }
  });
});

describe('GET /jobs/summary and GET /jobs/recent', () => {
  test('count and list real runs of every kind, newest first, with filters, pages and links', async () => {
    const before = await summary();
    const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoA.id, source_paths: [await source()] });
    const backup = await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=90`);
    expect(backup.body.data.status).toBe('success');
    const check = await h.api.post(`/repos/${repoB.id}/check?wait=60`);
    expect(check.body.data.status).toBe('success');
    expect((await h.api.patch(`/repos/${repoB.id}`, { password: 'not the password' })).status).toBe(200);
    const failed = await h.api.post(`/repos/${repoB.id}/check?wait=60`);
    expect(failed.body.data).toMatchObject({ status: 'failed', failure: { code: 'wrong_password' } });
    expect((await h.api.patch(`/repos/${repoB.id}`, { password })).status).toBe(200);

    const after = await summary();
    expect(after.counts.completed).toBe(before.counts.completed + 2);
    expect(after.counts.failed).toBe(before.counts.failed + 1);
    expect(after).toMatchObject({ delayed_count: 0, highest_priority_queued: null, next_available_at: null });

    const recent = await h.api.get('/jobs/recent');
    expect(recent.status).toBe(200);
    const ids = recent.body.data.map((r: { id: string }) => r.id);
    expect(ids.slice(0, 3)).toEqual([failed.body.data.id, check.body.data.id, backup.body.data.id]);
    const queuedAt = recent.body.data.map((r: { queued_at: string }) => Date.parse(r.queued_at));
    expect(queuedAt).toEqual([...queuedAt].sort((a, b) => b - a));
    expect(recent.body.data[2]).toMatchObject({
      id: backup.body.data.id, kind: 'backup', status: 'success', job_id: job.body.data.id, repo_id: repoA.id, failure: null,
      workflow_id: backup.body.data.workflow_id,
      links: { self: `/api/v1/backup-jobs/${job.body.data.id}/runs/${backup.body.data.id}`, temporal_ui: backup.body.data.links.temporal_ui },
    });
    expect(recent.body.data[0]).toMatchObject({ kind: 'repo_check', status: 'failed', failure: { code: 'wrong_password' }, links: { self: failed.body.data.links.self } });
    for (const run of recent.body.data.filter((r: { links: { self: string | null } }) => r.links.self)) {
      expect((await h.api.get(run.links.self.replace('/api/v1', ''))).body.data.id).toBe(run.id);
    }

    const backups = await h.api.get('/jobs/recent?kind=backup');
    expect(backups.body.data.map((r: { id: string }) => r.id)).toEqual([backup.body.data.id]);
    const failures = await h.api.get('/jobs/recent?status=failed');
    expect(failures.body.data.map((r: { id: string }) => r.id)).toEqual([failed.body.data.id]);
    const limited = await h.api.get('/jobs/recent?limit=1&page=2');
    expect(limited.body.data.map((r: { id: string }) => r.id)).toEqual([check.body.data.id]);
    expect(limited.body.meta).toEqual({ page: 2, per_page: 1, total: recent.body.meta.total, total_pages: recent.body.meta.total });
    expect((await h.api.get('/jobs/recent?limit=1&per_page=2')).body.meta.per_page).toBe(2);
    expectError(await h.api.get('/jobs/recent?kind=cron'), 422, 'validation_error');

    // A caller limited to repository B sees B's runs only: no backup of A, no pass over several repositories.
    const scoped = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [repoB.id] } });
    const theirs = await scoped.api.get('/jobs/recent');
    expect(theirs.body.data.map((r: { id: string }) => r.id)).toEqual([failed.body.data.id, check.body.data.id]);
    expect((await scoped.api.get('/jobs/summary')).body.data.counts).toMatchObject({ completed: 1, failed: 1 });

    // The job deleted, its run stays in the history, with no link to a route that would be 404.
    expect((await h.api.delete(`/backup-jobs/${job.body.data.id}`)).status).toBe(204);
    expect((await h.api.get('/jobs/recent?kind=backup')).body.data).toMatchObject([{ id: backup.body.data.id, links: { self: null } }]);
  });

  test('a schedule shows as the next start; a run whose workflow is gone counts as dead_letter', async () => {
    const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoA.id, source_paths: ['/srv/data'], schedule_enabled: true, schedule_hour: 3 });
    expect(job.status).toBe(201);
    const next = (await summary()).next_available_at;
    expect(next).toMatch(ISO);
    expect(Date.parse(next)).toBeGreaterThan(Date.now());
    expect((await h.api.patch(`/backup-jobs/${job.body.data.id}`, { schedule_enabled: false })).status).toBe(200);

    const before = await summary();
    const id = randomUUID();
    await h.sql(`insert into operation_runs (id, kind, status, trigger, workflow_id, repo_id, queued_at) values (?, 'repo_check', 'queued', 'api', ?, ?, now() - interval '5 minutes')`, [id, `repo-check-${repoA.id}-${id}`, repoA.id]);
    const after = await summary();
    // Dead, and counted as that only.
    expect(after.counts).toMatchObject({ queued: before.counts.queued, dead_letter: before.counts.dead_letter + 1 });
    expect(Date.parse(after.oldest_queued_at)).toBeLessThan(Date.now() - 4 * 60_000);
    // Listed, it is read as Temporal sees it: closed as lost, with its link.
    const listed = ((await h.api.get('/jobs/recent?kind=repo_check&per_page=200')).body.data as { id: string; status: string; failure: { code: string } | null; links: { self: string | null } }[]).find((r) => r.id === id);
    expect(listed).toMatchObject({ status: 'failed', failure: { code: 'workflow_lost' }, links: { self: `/api/v1/repos/${repoA.id}/runs/${id}` } });
    expect((await summary()).counts).toMatchObject({ queued: before.counts.queued, dead_letter: before.counts.dead_letter, failed: before.counts.failed + 1 });
    await h.sql(`delete from operation_runs where id = ?`, [id]);
  });
});

describe('POST /jobs/recover', () => {
  test('records the real outcome of closed workflows, closes lost ones, and leaves open ones alone', async () => {
    // A check that finished, but whose row still says running (its last write lost).
    const check = await h.api.post(`/repos/${repoA.id}/check?wait=60`);
    expect(check.body.data.status).toBe('success');
    await h.sql(`update operation_runs set status = 'running', finished_at = null where id = ?`, [check.body.data.id]);
    // A backup whose workflow is terminated (from the Temporal UI, say) before it recorded anything.
    const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoA.id, source_paths: [await source()] });
    await rm(gate, { force: true });
    const backup = (await h.api.post(`/backup-jobs/${job.body.data.id}/run`)).body.data;
    const handle = h.services.temporal.workflow.getHandle(backup.workflow_id);
    await waitFor(async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.some((a) => a.activityType?.name === 'refreshSnapshotCatalogue') ? true : undefined;
    }, 'the backup to reach its catalogue refresh');
    await handle.terminate('operator');
    await writeFile(gate, '');
    // A run whose workflow never existed, an old one and a recent one.
    const ghost = randomUUID();
    const fresh = randomUUID();
    await h.sql(`insert into operation_runs (id, kind, status, trigger, workflow_id, repo_id, queued_at) values (?, 'repo_check', 'queued', 'api', ?, ?, now() - interval '2 hours')`, [ghost, `repo-check-${repoB.id}-${ghost}`, repoB.id]);
    await h.sql(`insert into operation_runs (id, kind, status, trigger, workflow_id, repo_id, snapshot_id, queued_at) values (?, 'snapshot_delete', 'queued', 'api', ?, ?, 'abcdef01', now() - interval '5 minutes')`, [fresh, `snapshot-delete-${repoB.id}-${fresh}`, repoB.id]);
    // A pass still running.
    const open = await blockedPass();
    try {
      await h.sql(`update operation_runs set started_at = now() - interval '2 hours' where id in (?, ?)`, [check.body.data.id, open.run.id]);
      await h.sql(`update backup_job_runs set started_at = now() - interval '2 hours' where id = ?`, [backup.id]);

      // A caller limited to repository B reconciles B's runs only.
      const scoped = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [repoB.id] } });
      const theirs = await scoped.api.post('/jobs/recover', { older_than_minutes: 30 });
      expect(theirs.body.data).toEqual({
        recovered: 1, checked: 1,
        runs: [{ id: ghost, kind: 'repo_check', workflow_id: `repo-check-${repoB.id}-${ghost}`, previous_status: 'queued', status: 'failed' }],
      });

      const res = await h.api.post('/jobs/recover', { older_than_minutes: 30 });
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ recovered: 2, checked: 3 });
      expect(res.body.data.runs).toEqual(expect.arrayContaining([
        { id: backup.id, kind: 'backup', workflow_id: backup.workflow_id, previous_status: 'running', status: 'failed' },
        { id: check.body.data.id, kind: 'repo_check', workflow_id: check.body.data.workflow_id, previous_status: 'running', status: 'success' },
      ]));

      const [backupRow] = await h.sql(`select status, failure_code from backup_job_runs where id = ?`, [backup.id]);
      expect(backupRow).toEqual({ status: 'failed', failure_code: 'workflow_lost' });
      expect((await h.api.get(`/backup-jobs/${job.body.data.id}`)).body.data).toMatchObject({ last_status: 'failed', last_error: expect.stringMatching(/TERMINATED/) });
      const rows = await h.sql<{ id: string; status: string; failure_code: string | null; finished_at: string | null }>(
        `select id, status, failure_code, finished_at from operation_runs where id in (?, ?, ?, ?)`,
        [check.body.data.id, ghost, fresh, open.run.id],
      );
      const row = (id: string) => rows.find((r) => r.id === id);
      expect(row(check.body.data.id)).toMatchObject({ status: 'success', failure_code: null, finished_at: expect.any(String) });
      expect(row(ghost)).toMatchObject({ status: 'failed', failure_code: 'workflow_lost' });
      expect(row(fresh)).toMatchObject({ status: 'queued', finished_at: null });
      expect(row(open.run.id)).toMatchObject({ status: 'running', finished_at: null });
      expect((await h.api.post('/jobs/recover', {})).body.data).toMatchObject({ recovered: 0, checked: 1 });
    } finally {
      expect(await open.release()).toMatchObject({ status: 'success' });
      await h.sql(`delete from operation_runs where id = ?`, [fresh]);
    }
  });

  test('a copy run closed as lost shows on its copy job; one still going holds its job even when the job now reads another repository', async () => {
    const copy = (await h.api.post('/copy-jobs', { name: `copy-${unique()}`, source_repo_id: repoA.id, dest_path: join(dir, `dest-${unique()}`), dest_password: 'pw' })).body.data;
    const insertRun = async (age: string) => {
      const id = randomUUID();
      await h.sql(`insert into operation_runs (id, kind, status, trigger, job_id, workflow_id, repo_id, queued_at, started_at, params)
        values (?, 'copy', 'running', 'api', ?, ?, ?, now() - interval '${age}', now() - interval '${age}', '{}')`, [id, copy.id, `copy-job-${copy.id}-${id}`, repoA.id]);
      await h.sql(`update copy_jobs set last_status = 'running', last_run_id = ? where id = ?`, [id, copy.id]);
      return id;
    };

    const lost = await insertRun('2 hours');
    const recovered = await h.api.post('/jobs/recover', { older_than_minutes: 30 });
    expect(recovered.body.data.runs).toContainEqual({ id: lost, kind: 'copy', workflow_id: `copy-job-${copy.id}-${lost}`, previous_status: 'running', status: 'failed' });
    expect((await h.api.get(`/copy-jobs/${copy.id}`)).body.data).toMatchObject({ last_status: 'failed', last_error: expect.stringMatching(/NOT_FOUND/) });

    // A run just recorded (its workflow not started yet) is still going: moving the job to another repository starts no second one.
    const going = await insertRun('1 second');
    expect((await h.api.patch(`/copy-jobs/${copy.id}`, { source_repo_id: repoB.id })).status).toBe(200);
    expectError(await h.api.post(`/copy-jobs/${copy.id}/run`), 409, 'run_in_progress');
    expect(await h.count('operation_runs', "kind = 'copy' and job_id = ?", [copy.id])).toBe(2);
    await h.sql(`update operation_runs set status = 'failed', finished_at = now() where id = ?`, [going]);
    await h.api.delete(`/copy-jobs/${copy.id}`);
  });
});
