import { randomUUID } from 'node:crypto';
import { BackupJob, BackupJobRun, type RunStatus } from '../../db/entities';
import { startHarness, type Harness } from '../support/harness';
import { ISO, expectError, expectFieldError, unique } from '../support/expectations';

/**
 * Backup jobs through the API: creation with defaults, listing, updates, the path guard,
 * references to repositories and hosts, run listings, and deletion while a run is active.
 * No workflow runs here: an active run is simulated by a run row, as a worker would have left it.
 */
let h: Harness;
let repo: { id: number; name: string };
let otherRepo: { id: number; name: string };
let host: { id: number; name: string };

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const makeRepo = async () => {
    const res = await h.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/backups/${unique()}`, password: 'job-test-pw' });
    expect(res.status).toBe(201);
    return res.body.data;
  };
  repo = await makeRepo();
  otherRepo = await makeRepo();
  const hostRes = await h.api.post('/hosts', { name: `host-${unique()}`, hostname: 'files.example.internal' });
  expect(hostRes.status).toBe(201);
  host = hostRes.body.data;
});
afterAll(async () => {
  await h?.stop();
});

const newJob = (extra: Record<string, unknown> = {}) => ({ name: `job-${unique()}`, repo_id: repo.id, source_paths: ['/srv/data'], ...extra });

async function createJob(extra: Record<string, unknown> = {}) {
  const res = await h.api.post('/backup-jobs', newJob(extra));
  expect(res.status).toBe(201);
  return res.body.data;
}

async function jobRows(): Promise<number> {
  return h.services.orm.em.fork().count(BackupJob, {});
}

/** A run row as the API and the worker record it, without a workflow behind it. */
async function insertRun(jobId: number, status: RunStatus): Promise<string> {
  const em = h.services.orm.em.fork();
  const id = randomUUID();
  em.create(BackupJobRun, {
    id,
    jobId,
    repoId: repo.id,
    status,
    workflowId: `backup-job-${jobId}-${id}`,
    startedAt: status === 'queued' ? null : new Date(),
    finishedAt: status === 'success' || status === 'failed' ? new Date() : null,
  });
  await em.flush();
  return id;
}

async function setRunStatus(runId: string, status: RunStatus): Promise<void> {
  await h.services.orm.em.fork().nativeUpdate(BackupJobRun, { id: runId }, { status, finishedAt: new Date() });
}

describe('create, read, update, delete', () => {
  test('POST /backup-jobs answers 201 with the defaults and the repository name', async () => {
    const name = `job-${unique()}`;
    const res = await h.api.post('/backup-jobs', { name, repo_id: repo.id, source_paths: ['/srv/data', '/home'] });
    expect(res.status).toBe(201);
    expect(res.body.data).toEqual({
      id: expect.any(Number),
      name,
      repo_id: repo.id,
      repo_name: repo.name,
      host_id: null,
      host_name: null,
      source_paths: ['/srv/data', '/home'],
      tags: [],
      excludes: [],
      description: null,
      schedule_enabled: false,
      schedule_hour: 2,
      schedule_days: '1',
      schedule_cron: null,
      schedule_timezone: null,
      schedule_jitter_seconds: 0,
      schedule_overlap: 'skip',
      schedule_catchup_minutes: 60,
      schedule_paused: false,
      notify_on_failure: true,
      notification_policy: { inherit: true },
      remote_repo_path: null,
      hostname_override: null,
      last_run: null,
      last_status: null,
      last_run_id: null,
      last_snapshot_id: null,
      last_error: null,
      retention_enabled: false,
      retention_keep_last: null,
      retention_keep_hourly: null,
      retention_keep_daily: null,
      retention_keep_weekly: null,
      retention_keep_monthly: null,
      retention_keep_yearly: null,
      retention_keep_within: null,
      retention_keep_tags: [],
      retention_prune: true,
      pre_hook_command: null,
      post_hook_command: null,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
  });

  test('every given field is stored; host_name is resolved', async () => {
    const body = newJob({
      host_id: host.id,
      source_paths: ['/etc', '/var/www'],
      tags: ['nightly', 'web-1.2:prod'],
      excludes: ['*.tmp', '/var/www/cache'],
      description: 'web server',
      schedule_enabled: false,
      schedule_hour: 23,
      schedule_days: '1,3,5',
      notify_on_failure: false,
      remote_repo_path: '/mnt/backup/repo',
      hostname_override: 'web1.example.com',
    });
    const res = await h.api.post('/backup-jobs', body);
    expect(res.status).toBe(201);
    const { repo_id: _repoId, host_id: _hostId, ...fields } = body as Record<string, unknown>;
    expect(res.body.data).toMatchObject({ ...fields, repo_id: repo.id, repo_name: repo.name, host_id: host.id, host_name: host.name });
    expect((await h.api.get(`/backup-jobs/${res.body.data.id}`)).body.data).toEqual(res.body.data);
  });

  test('the 201 carries a Location header naming the new job', async () => {
    const res = await h.api.post('/backup-jobs', newJob());
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/backup-jobs/${res.body.data.id}`);
  });

  test('GET /backup-jobs is paginated by id; GET of an unknown id is 404', async () => {
    for (let i = 0; i < 3; i++) await createJob();
    const total = await jobRows();
    const all = await h.api.get('/backup-jobs?per_page=200');
    expect(all.status).toBe(200);
    expect(all.body.meta).toEqual({ page: 1, per_page: 200, total, total_pages: 1 });
    const ids = all.body.data.map((j: { id: number }) => j.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
    const page = await h.api.get('/backup-jobs?page=2&per_page=2');
    expect(page.body.meta).toEqual({ page: 2, per_page: 2, total, total_pages: Math.ceil(total / 2) });
    expect(page.body.data.map((j: { id: number }) => j.id)).toEqual(ids.slice(2, 4));
    expectFieldError(await h.api.get('/backup-jobs?per_page=201'), 'per_page');

    expectError(await h.api.get('/backup-jobs/999999'), 404, 'not_found');
  });

  test('PATCH changes each field; changing repo_id or host_id changes the resolved names', async () => {
    const job = await createJob();
    const changes: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ name: 'renamed' }, { name: 'renamed' }],
      [{ source_paths: ['/opt'] }, { source_paths: ['/opt'] }],
      [{ tags: ['a', 'b'] }, { tags: ['a', 'b'] }],
      [{ excludes: ['*.log'] }, { excludes: ['*.log'] }],
      [{ description: 'desc' }, { description: 'desc' }],
      [{ description: null }, { description: null }],
      [{ schedule_hour: 0 }, { schedule_hour: 0 }],
      [{ schedule_days: '7' }, { schedule_days: '7' }],
      [{ notify_on_failure: false }, { notify_on_failure: false }],
      [{ remote_repo_path: '/remote/repo' }, { remote_repo_path: '/remote/repo' }],
      [{ hostname_override: 'alias' }, { hostname_override: 'alias' }],
      [{ repo_id: otherRepo.id }, { repo_id: otherRepo.id, repo_name: otherRepo.name }],
      [{ host_id: host.id }, { host_id: host.id, host_name: host.name }],
      [{ host_id: null }, { host_id: null, host_name: null }],
    ];
    for (const [patch, expected] of changes) {
      const res = await h.api.patch(`/backup-jobs/${job.id}`, patch);
      expect({ patch, status: res.status }).toEqual({ patch, status: 200 });
      expect(res.body.data).toMatchObject(expected);
      expect((await h.api.get(`/backup-jobs/${job.id}`)).body.data).toMatchObject(expected);
    }
  });

  test('PATCH refuses bad input and changes nothing', async () => {
    const job = await createJob();
    expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { source_paths: ['/srv/../etc'] }), 'source_paths[0]');
    expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { source_paths: ['/ok', 'relative'] }), 'source_paths[1]');
    expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { source_paths: [] }), 'source_paths');
    expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { repo_id: 999999 }), 'repo_id');
    expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { host_id: 999999 }), 'host_id');
    expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { schedule_hour: 24 }), 'schedule_hour');
    expectError(await h.api.patch(`/backup-jobs/${job.id}`, {}), 422, 'validation_error');
    expectError(await h.api.patch('/backup-jobs/999999', { name: 'ghost' }), 404, 'not_found');
    expect((await h.api.get(`/backup-jobs/${job.id}`)).body.data).toEqual(job);
  });

  test('DELETE answers 204, then the job is gone', async () => {
    const job = await createJob();
    expect((await h.api.delete(`/backup-jobs/${job.id}`)).status).toBe(204);
    expectError(await h.api.get(`/backup-jobs/${job.id}`), 404, 'not_found');
    expectError(await h.api.delete(`/backup-jobs/${job.id}`), 404, 'not_found');
    expectError(await h.api.get(`/backup-jobs/${job.id}/runs`), 404, 'not_found');
  });
});

describe('validation at creation: 422 naming the field, nothing created', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a relative source path', { source_paths: ['relative/dir'] }, 'source_paths[0]'],
    ['a source path with ..', { source_paths: ['/srv/data', '/srv/../etc/shadow'] }, 'source_paths[1]'],
    ['a source path under /proc', { source_paths: ['/proc/self/environ'] }, 'source_paths[0]'],
    ['a source path under /sys', { source_paths: ['/srv', '/srv/data', '/sys'] }, 'source_paths[2]'],
    ['a source path with a control character', { source_paths: ['/srv/a\u0007b'] }, 'source_paths[0]'],
    ['empty source_paths', { source_paths: [] }, 'source_paths'],
    ['missing source_paths', { source_paths: undefined }, 'source_paths'],
    ['an unknown repo_id', { repo_id: 999999 }, 'repo_id'],
    ['an unknown host_id', { host_id: 999999 }, 'host_id'],
    ['schedule_hour 24', { schedule_hour: 24 }, 'schedule_hour'],
    ['schedule_hour -1', { schedule_hour: -1 }, 'schedule_hour'],
    ['schedule_days 8', { schedule_days: '1,8' }, 'schedule_days'],
    ['a tag with a space', { tags: ['bad tag'] }, 'tags[0]'],
    ['a tag with a comma', { tags: ['ok', 'a,b'] }, 'tags[1]'],
    ['a tag with shell characters', { tags: ['$(reboot)'] }, 'tags[0]'],
    ['an unknown field', { retention_keep_everything: 3 }, 'retention_keep_everything'],
  ];
  test.each(cases)('%s', async (_what, change, field) => {
    const before = await jobRows();
    const body: Record<string, unknown> = { ...newJob(), ...change };
    for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
    expectFieldError(await h.api.post('/backup-jobs', body), field);
    expect(await jobRows()).toBe(before);
  });
});

describe('runs', () => {
  test('GET /backup-jobs/{id}/runs of a job that never ran is an empty page', async () => {
    const job = await createJob();
    const res = await h.api.get(`/backup-jobs/${job.id}/runs`);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(res.body.meta).toEqual({ page: 1, per_page: 50, total: 0, total_pages: 0 });
    expectError(await h.api.get('/backup-jobs/999999/runs'), 404, 'not_found');
  });

  test('GET of an unknown run is 404; a run id that is not a uuid is 422', async () => {
    const job = await createJob();
    expectError(await h.api.get(`/backup-jobs/${job.id}/runs/${randomUUID()}`), 404, 'not_found');
    expectFieldError(await h.api.get(`/backup-jobs/${job.id}/runs/not-a-uuid`), 'run_id');
  });

  test("a run is only visible under its own job", async () => {
    const job = await createJob();
    const other = await createJob();
    const runId = await insertRun(job.id, 'success');
    const own = await h.api.get(`/backup-jobs/${job.id}/runs/${runId}`);
    expect(own.status).toBe(200);
    expect(own.body.data).toMatchObject({ id: runId, job_id: job.id, status: 'success', links: { self: `/api/v1/backup-jobs/${job.id}/runs/${runId}` } });
    expectError(await h.api.get(`/backup-jobs/${other.id}/runs/${runId}`), 404, 'not_found');
    const list = await h.api.get(`/backup-jobs/${job.id}/runs`);
    expect(list.body.data.map((r: { id: string }) => r.id)).toEqual([runId]);
    expect((await h.api.get(`/backup-jobs/${job.id}/runs?status=failed`)).body.meta.total).toBe(0);
  });

  test('running an unknown job is 404 and starts nothing', async () => {
    const before = await h.services.orm.em.fork().count(BackupJobRun, {});
    expectError(await h.api.post('/backup-jobs/999999/run'), 404, 'not_found');
    expect(await h.services.orm.em.fork().count(BackupJobRun, {})).toBe(before);
  });
});

describe('deleting a job with an active run', () => {
  test.each(['running', 'queued'] as const)('is 409 run_in_progress while a run is %s, and 204 once it finished', async (status) => {
    const job = await createJob();
    const runId = await insertRun(job.id, status);

    const res = await h.api.delete(`/backup-jobs/${job.id}`);
    expectError(res, 409, 'run_in_progress');
    expect(res.body.error.run_id).toBe(runId);
    expect((await h.api.get(`/backup-jobs/${job.id}`)).status).toBe(200);

    await setRunStatus(runId, 'success');
    expect((await h.api.delete(`/backup-jobs/${job.id}`)).status).toBe(204);
    expectError(await h.api.get(`/backup-jobs/${job.id}`), 404, 'not_found');
  });

  test('a delete racing a run trigger never lets both succeed', async () => {
    for (let i = 0; i < 8; i++) {
      const job = await createJob();
      const [run, del] = await Promise.all([h.api.post(`/backup-jobs/${job.id}/run`), h.api.delete(`/backup-jobs/${job.id}`)]);
      const outcome = `${run.status}/${del.status}`;
      // Either the run got in first (the delete is refused) or the delete did (the run finds no job).
      expect(['202/409', '404/204']).toContain(outcome);
    }
  });

  test('a second trigger is refused while the first run is queued, and leaves the first untouched', async () => {
    const job = await createJob();
    const first = await h.api.post(`/backup-jobs/${job.id}/run`);
    expect(first.status).toBe(202);
    const second = await h.api.post(`/backup-jobs/${job.id}/run`);
    expectError(second, 409, 'run_in_progress', { run_id: first.body.data.id });
    const runs = await h.api.get(`/backup-jobs/${job.id}/runs`);
    expect(runs.body.data.map((r: { id: string }) => r.id)).toEqual([first.body.data.id]);
  });

  test('deleting a job keeps its run history', async () => {
    // The contract (deleteBackupJob): "Snapshots already made stay in the repository; run history is kept."
    const job = await createJob();
    const runId = await insertRun(job.id, 'success');
    expect((await h.api.delete(`/backup-jobs/${job.id}`)).status).toBe(204);
    expect(await h.services.orm.em.fork().count(BackupJobRun, { id: runId })).toBe(1);
  });
});
