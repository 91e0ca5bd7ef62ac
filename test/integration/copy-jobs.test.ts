import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { resticAsync } from '../support/restic';
import { stackEnv } from '../support/stack-env';

/** Copy jobs: `restic copy` into local, rclone and sftp destinations, checked with restic itself. */
let h: Harness;
let dir: string;
let source: { id: number; path: string };
const password = 'copy-source-pw';
const destPassword = 'copy-dest-pw';

const snapshotsOf = async (repository: string, pw: string, env: Record<string, string> = {}) => {
  const listed = await resticAsync(repository, pw, ['snapshots', '--json', '--no-lock'], env);
  expect(listed.status).toBe(0);
  return JSON.parse(listed.stdout) as { id: string; tree: string; tags?: string[]; hostname: string }[];
};

async function backupToSource(tags: string[] = []): Promise<string> {
  const src = join(dir, `src-${unique()}`);
  await mkdir(src);
  await writeFile(join(src, 'data'), unique());
  const made = await resticAsync(source.path, password, ['backup', '--json', ...tags.flatMap((t) => ['--tag', t]), src]);
  expect(made.status).toBe(0);
  return made.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary').snapshot_id;
}

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-copy-'));
  const path = join(dir, 'source');
  const repo = await h.api.post('/repos', { name: `source-${unique()}`, path, password, init: true });
  source = { id: repo.body.data.id, path };
  await backupToSource(['keep']);
  await backupToSource();
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

const newJob = (body: Record<string, unknown> = {}) =>
  h.api.post('/copy-jobs', { name: `copy-${unique()}`, source_repo_id: source.id, dest_path: join(dir, `dest-${unique()}`), dest_password: destPassword, init_destination: true, ...body });
const run = async (jobId: number, body?: Record<string, unknown>) => (await h.api.post(`/copy-jobs/${jobId}/run?wait=90`, body)).body.data;

describe('copy job records', () => {
  test('create, read, list, update and delete; the destination password and rclone configuration never come back', async () => {
    const created = await newJob({ rclone_config: '[remote]\ntype = local\n', filter_tags: ['keep'] });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ source_repo_id: source.id, has_rclone_config: true, init_destination: true, filter_tags: ['keep'], filter_hosts: [], last_status: null, dest_password_source: 'local' });
    expect(created.text).not.toContain(destPassword);
    expect(created.text).not.toContain('type = local');
    const id = created.body.data.id;
    expect((await h.api.get(`/copy-jobs/${id}`)).body.data).toEqual(created.body.data);
    expect((await h.api.get('/copy-jobs')).body.data.map((j: { id: number }) => j.id)).toContain(id);
    const updated = await h.api.patch(`/copy-jobs/${id}`, { name: 'renamed', rclone_config: null, dest_password: 'rotated' });
    expect(updated.body.data).toMatchObject({ name: 'renamed', has_rclone_config: false });
    expect((await h.api.delete(`/copy-jobs/${id}`)).status).toBe(204);
    expectError(await h.api.get(`/copy-jobs/${id}`), 404, 'not_found');
  });

  test('bad input is 422 and stores nothing; the source repository cannot be deleted while a copy job uses it', async () => {
    const before = await h.count('copy_jobs');
    const base = { name: 'bad', source_repo_id: source.id, dest_path: join(dir, 'x'), dest_password: 'pw' };
    expectFieldError(await h.api.post('/copy-jobs', { ...base, dest_password: undefined }), 'dest_password');
    expectFieldError(await h.api.post('/copy-jobs', { ...base, dest_password_source: 'agent' }), 'dest_password_source');
    expectFieldError(await h.api.post('/copy-jobs', { ...base, dest_path: 'relative/path' }), 'dest_path');
    expectFieldError(await h.api.post('/copy-jobs', { ...base, dest_path: source.path }), 'dest_path');
    expectFieldError(await h.api.post('/copy-jobs', { ...base, source_repo_id: 999999 }), 'source_repo_id');
    expectFieldError(await h.api.post('/copy-jobs', { ...base, filter_tags: ['no spaces'] }), 'filter_tags[0]');
    expect(await h.count('copy_jobs')).toBe(before);
    // A copy reads every snapshot out: choosing what and where needs the restore permission too.
    const operator = await h.createCaller({ user: { role: 'operator' } });
    expectError(await operator.api.post('/copy-jobs', base), 403, 'forbidden');
    expect(await h.count('copy_jobs')).toBe(before);
    const job = await newJob();
    expectError(await operator.api.patch(`/copy-jobs/${job.body.data.id}`, { dest_path: join(dir, 'mine') }), 403, 'forbidden');
    expect((await operator.api.patch(`/copy-jobs/${job.body.data.id}`, { name: 'renamed by an operator' })).status).toBe(200);
    // It writes on the control plane: a host-limited caller neither sees nor creates such a job.
    const hostLimited = await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [] } });
    expect((await hostLimited.api.get('/copy-jobs')).body.data).toEqual([]);
    expectError(await hostLimited.api.get(`/copy-jobs/${job.body.data.id}`), 403, 'host_not_in_scope');
    expectError(await hostLimited.api.post('/copy-jobs', base), 403, 'host_not_in_scope');
    expectError(await h.api.delete(`/repos/${source.id}`), 409, 'repo_in_use');
    await h.api.delete(`/copy-jobs/${job.body.data.id}`);
  });
});

describe('runs', () => {
  test('copies every snapshot into a new destination it initialises with the source\u2019s chunker parameters; a rerun copies only what is missing', async () => {
    const dest = join(dir, `dest-${unique()}`);
    const job = (await newJob({ dest_path: dest })).body.data;
    const first = await run(job.id);
    expect(first).toMatchObject({ kind: 'copy', status: 'success', job_id: job.id, repo_id: source.id, workflow_id: `copy-job-${job.id}-${first.id}` });
    const sourceSnapshots = await snapshotsOf(source.path, password);
    expect(first.result).toMatchObject({ snapshots_copied: sourceSnapshots.length, snapshots_skipped: 0, initialised: true });
    expect((await snapshotsOf(dest, destPassword)).map((s) => s.tree).sort()).toEqual(sourceSnapshots.map((s) => s.tree).sort());
    const config = async (repo: string, pw: string) => JSON.parse((await resticAsync(repo, pw, ['cat', 'config', '--no-lock'])).stdout).chunker_polynomial;
    expect(await config(dest, destPassword)).toBe(await config(source.path, password));

    const again = await run(job.id);
    expect(again.result).toMatchObject({ snapshots_copied: 0, snapshots_skipped: sourceSnapshots.length, initialised: false });
    await backupToSource();
    const third = await run(job.id);
    expect(third.result).toMatchObject({ snapshots_copied: 1, snapshots_skipped: sourceSnapshots.length });
    expect(await snapshotsOf(dest, destPassword)).toHaveLength(sourceSnapshots.length + 1);

    expect((await h.api.get(`/copy-jobs/${job.id}`)).body.data).toMatchObject({ last_status: 'success', last_run_id: third.id, last_error: null });
    expect((await h.api.get(`/repos/${source.id}/runs?kind=copy`)).body.data.map((r: { id: string }) => r.id)).toContain(third.id);
    const events = await h.sql<{ payload: { id: number; run_id: string } }>("select payload from events where type = 'copy_job.success'");
    expect(events.filter((e) => e.payload.id === job.id).map((e) => e.payload.run_id)).toEqual([first.id, again.id, third.id]);
  });

  test('one snapshot, or only the snapshots of the job\u2019s tags', async () => {
    const tagged = (await snapshotsOf(source.path, password)).filter((s) => s.tags?.includes('keep'));
    const byTag = (await newJob({ filter_tags: ['keep'] })).body.data;
    expect((await run(byTag.id)).result).toMatchObject({ snapshots_copied: tagged.length });
    expect((await snapshotsOf(byTag.dest_path, destPassword)).map((s) => s.tree).sort()).toEqual(tagged.map((s) => s.tree).sort());

    const one = await backupToSource();
    const single = (await newJob()).body.data;
    const copied = await run(single.id, { snapshot_id: one.slice(0, 8) });
    expect(copied.result).toMatchObject({ snapshots_copied: 1 });
    expect(await snapshotsOf(single.dest_path, destPassword)).toHaveLength(1);
    expect((await run(single.id, { snapshot_id: 'deadbeef' })).failure).toMatchObject({ code: 'snapshot_not_found' });
  });

  test('a missing destination is never initialised unless the job says so: the run fails and emits copy_job.failure', async () => {
    const dest = join(dir, `missing-${unique()}`);
    const job = (await newJob({ dest_path: dest, init_destination: false })).body.data;
    const failed = await run(job.id);
    expect(failed).toMatchObject({ status: 'failed', failure: { code: 'repository_not_found' }, attempts: 1 });
    expect(existsSync(join(dest, 'config'))).toBe(false);
    expect((await h.api.get(`/copy-jobs/${job.id}`)).body.data).toMatchObject({ last_status: 'failed', last_error: failed.failure.message });
    const events = await h.sql<{ payload: { id: number } }>("select payload from events where type = 'copy_job.failure'");
    expect(events.map((e) => e.payload.id)).toContain(job.id);
  });

  test('an rclone destination, with the job\u2019s rclone configuration', async () => {
    const store = join(dir, `rclone-store-${unique()}`);
    const rcloneConfig = '[bcplocal]\ntype = local\n';
    const job = (await newJob({ dest_path: `rclone:bcplocal:${store}`, rclone_config: rcloneConfig })).body.data;
    const copied = await run(job.id);
    expect(copied).toMatchObject({ status: 'success', result: { initialised: true } });
    const configFile = join(dir, 'rclone.conf');
    await writeFile(configFile, rcloneConfig);
    expect(await snapshotsOf(`rclone:bcplocal:${store}`, destPassword, { RCLONE_CONFIG: configFile })).toHaveLength(copied.result.snapshots_copied);
    expect(existsSync(join(store, 'config'))).toBe(true);
  });

  test('an sftp destination on a host, reached with that host\u2019s key and pinned host key', async () => {
    const { sshd } = stackEnv();
    const key = await h.api.post('/ssh-keys', { name: `key-${unique()}`, host: sshd.host });
    await appendFile(sshd.authorizedKeysFile, `${key.body.data.public_key}\n`);
    const host = (await h.api.post('/hosts', { name: `offsite-${unique()}`, hostname: sshd.host, port: sshd.port, user: sshd.user, ssh_key_id: key.body.data.id })).body.data;
    const destPath = `sftp:${sshd.user}@${sshd.host}:${join(dir, `sftp-dest-${unique()}`)}`;
    expectFieldError(await newJob({ dest_path: destPath }), 'dest_host_id');
    const job = (await newJob({ dest_path: destPath, dest_host_id: host.id })).body.data;
    expect(job.dest_host_id).toBe(host.id);
    // Until the host is tested its key is not pinned, and the run refuses to trust any key.
    expect((await run(job.id)).failure).toMatchObject({ code: 'host_key_not_pinned' });
    expect((await h.api.post(`/hosts/${host.id}/test`)).body.data.host_key.status).toBe('pinned');
    const copied = await run(job.id);
    expect(copied).toMatchObject({ status: 'success', result: { initialised: true } });
    // Loopback: the destination's directory is on this machine, readable with restic directly.
    expect(await snapshotsOf(destPath.slice(destPath.lastIndexOf(':') + 1), destPassword)).toHaveLength(copied.result.snapshots_copied);
    expectError(await h.api.delete(`/hosts/${host.id}`), 409, 'host_in_use');
  });
});
