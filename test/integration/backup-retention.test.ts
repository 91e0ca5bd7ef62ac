import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { restic } from '../support/restic';
import { stackEnv } from '../support/stack-env';

/**
 * Retention policies of backup jobs, applied after each successful backup, checked against the
 * repository with restic itself. The worker's restic is real restic; a marker file makes its
 * `forget` fail (as a repository whose password changed would), to see a retention failure.
 */
let h: Harness;
let dir: string;
let failForget: string;
const password = 'retention-test-pw';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-retention-'));
  failForget = join(dir, 'fail-forget');
  const wrapper = join(dir, 'restic');
  await writeFile(
    wrapper,
    `#!/bin/sh
for arg in "$@"; do
  if [ "$arg" = forget ] && [ -e ${failForget} ]; then
    echo '{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}' >&2
    exit 12
  fi
done
exec ${stackEnv().resticBinary} "$@"
`,
  );
  await chmod(wrapper, 0o755);
  h = await startHarness({ resticBinary: wrapper });
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function setup(retention: Record<string, unknown>) {
  const name = unique();
  const source = join(dir, `src-${name}`);
  await mkdir(source);
  const path = join(dir, `repo-${name}`);
  const repo = await h.api.post('/repos', { name: `repo-${name}`, path, password, init: true });
  const job = await h.api.post('/backup-jobs', { name: `job-${name}`, repo_id: repo.body.data.id, source_paths: [source], ...retention });
  expect(job.status).toBe(201);
  const run = async () => {
    await writeFile(join(source, 'changing.bin'), randomBytes(10_000));
    const res = await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=90`);
    expect(res.body.data.status).toBe('success');
    return res.body.data;
  };
  return { repoId: repo.body.data.id as number, jobId: job.body.data.id as number, path, source, run };
}

function snapshots(path: string): { id: string; paths: string[] }[] {
  const listed = restic(path, password, ['snapshots', '--json', '--no-lock']);
  expect(listed.status).toBe(0);
  return JSON.parse(listed.stdout);
}

describe('validation', () => {
  test('a policy that could keep nothing, and malformed rules, are 422; nothing is stored', async () => {
    const repo = await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, `v-${unique()}`), password });
    const base = { name: `job-${unique()}`, repo_id: repo.body.data.id, source_paths: ['/srv'] };
    const before = await h.count('backup_jobs');
    expectFieldError(await h.api.post('/backup-jobs', { ...base, retention_enabled: true }), 'retention_enabled');
    expectFieldError(await h.api.post('/backup-jobs', { ...base, retention_enabled: true, retention_keep_tags: ['keep'] }), 'retention_enabled');
    expectFieldError(await h.api.post('/backup-jobs', { ...base, retention_enabled: true, retention_keep_last: 0 }), 'retention_keep_last');
    expectFieldError(await h.api.post('/backup-jobs', { ...base, retention_enabled: true, retention_keep_within: '30 days' }), 'retention_keep_within');
    expect(await h.count('backup_jobs')).toBe(before);

    const job = await h.api.post('/backup-jobs', { ...base, retention_keep_daily: 7 });
    expect(job.body.data).toMatchObject({ retention_enabled: false, retention_keep_daily: 7, retention_keep_last: null, retention_prune: true, retention_keep_tags: [] });
    expectFieldError(await h.api.patch(`/backup-jobs/${job.body.data.id}`, { retention_enabled: true, retention_keep_daily: null }), 'retention_enabled');
    expect((await h.api.get(`/backup-jobs/${job.body.data.id}`)).body.data).toMatchObject({ retention_enabled: false, retention_keep_daily: 7 });
    const enabled = await h.api.patch(`/backup-jobs/${job.body.data.id}`, { retention_enabled: true, retention_keep_within: '1y6m' });
    expect(enabled.body.data).toMatchObject({ retention_enabled: true, retention_keep_daily: 7, retention_keep_within: '1y6m' });
  });
});

describe('after a successful backup', () => {
  test('keep_last 2 with prune: restic keeps the two newest snapshots of the job, and nobody else\u2019s', async () => {
    const job = await setup({ retention_enabled: true, retention_keep_last: 2, retention_prune: true });
    // Another job's snapshot in the same repository (other paths): retention must not touch it.
    const other = join(dir, `other-${unique()}`);
    await mkdir(other);
    await writeFile(join(other, 'f'), 'other');
    expect(restic(job.path, password, ['backup', other]).status).toBe(0);
    const otherId = snapshots(job.path).find((s) => s.paths.includes(other))?.id;

    const first = await job.run();
    expect(first.retention).toEqual({ applied: true, removed_snapshots: [], kept_snapshots: 1, pruned: true });
    const second = await job.run();
    const third = await job.run();
    expect(third.retention).toEqual({ applied: true, removed_snapshots: [first.snapshot_id], kept_snapshots: 2, pruned: true });
    expect(third.warnings).toEqual([]);

    const ids = snapshots(job.path).map((s) => s.id).sort();
    expect(ids).toEqual([second.snapshot_id, third.snapshot_id, otherId].sort());
    expect(restic(job.path, password, ['check', '--no-lock']).status).toBe(0);
    const listed = await h.api.get(`/repos/${job.repoId}/snapshots`);
    expect(listed.body.data.map((s: { id: string }) => s.id).sort()).toEqual(ids);
  });

  test('a failed retention step leaves the backup successful, with a warning and an event', async () => {
    const job = await setup({ retention_enabled: true, retention_keep_last: 1 });
    await job.run();
    await writeFile(failForget, '');
    try {
      const run = await job.run();
      expect(run).toMatchObject({ status: 'success', failure: null, retention: { applied: false, removed_snapshots: [] } });
      expect(run.warnings).toEqual([expect.stringMatching(/^the retention policy was not applied: .*wrong repository password/)]);
      expect((await h.api.get(`/backup-jobs/${job.jobId}`)).body.data).toMatchObject({ last_status: 'success', last_snapshot_id: run.snapshot_id });
      expect(snapshots(job.path)).toHaveLength(2);
      const events = await h.sql<{ payload: Record<string, unknown> }>("select payload from events where type = 'backup_job.retention_failure'");
      expect(events.map((e) => e.payload)).toContainEqual(expect.objectContaining({ id: job.jobId, run_id: run.id, code: 'wrong_password' }));
    } finally {
      await rm(failForget, { force: true });
    }
  });

  test('a job without a policy forgets nothing', async () => {
    const job = await setup({ retention_keep_last: 1 });
    const runs = [await job.run(), await job.run()];
    expect(runs.map((r) => r.retention)).toEqual([null, null]);
    expect(snapshots(job.path)).toHaveLength(2);
  });
});
