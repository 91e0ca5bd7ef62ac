import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { stackEnv } from '../support/stack-env';

/**
 * Restores through the API onto the control plane and onto a host reached over SSH (the
 * loopback sshd): with restic on the host, and through the worker and rsync when the host's
 * restic cannot open the repository. Every check reads the files restored on disk.
 */
let h: Harness;
let dir: string;
let src: string;
let repoId: number;
let snapshotId: string;
let resticHostId: number;
let rsyncHostId: number;
let small: string | null = null;
/** Bytes of the source files, as restic counts what a full restore writes. */
let sourceBytes = 0;
const localRoot = () => join(dir, 'local-root');
const remoteRoot = () => join(dir, 'remote-root');
const repoName = `restore repo ${unique()}`;
const contextDir = (root: string) => join(root, hostname().replace(/[^A-Za-z0-9._-]+/g, '_'), repoName.replace(/[^A-Za-z0-9._-]+/g, '_'));

/** Every regular file under a directory, relative to it, sorted. */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return execFileSync('find', ['.', '-type', 'f'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.slice(2)).sort();
}

async function restore(body: Record<string, unknown>, api = h.api) {
  return api.post('/restores?wait=120', body);
}

async function createHost(name: string, resticPath: string, keyId: number): Promise<number> {
  const { sshd } = stackEnv();
  const host = await h.api.post('/hosts', { name, hostname: sshd.host, port: sshd.port, user: sshd.user, ssh_key_id: keyId, restic_path: resticPath });
  expect(host.status).toBe(201);
  expect((await h.api.post(`/hosts/${host.body.data.id}/test`)).body.data.host_key.status).toBe('pinned');
  return host.body.data.id as number;
}

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-restores-'));
  src = join(dir, 'src');
  await mkdir(join(src, 'docs'), { recursive: true });
  await mkdir(join(src, 'weird'), { recursive: true });
  await writeFile(join(src, 'docs', 'report.txt'), 'quarterly numbers\n');
  await writeFile(join(src, 'docs', 'notes.md'), '# notes\n');
  // Names that are glob patterns, next to the names those patterns would match.
  for (const name of ['a[1].txt', 'a1.txt', 'b*.txt', 'bb.txt', 'c?.txt', 'cc.txt']) await writeFile(join(src, 'weird', name), `${name}\n`);
  await writeFile(join(src, 'big.bin'), Buffer.alloc(2 * 1024 * 1024, 1));
  sourceBytes = filesUnder(src).reduce((sum, file) => sum + statSync(join(src, file)).size, 0);

  const repo = await h.api.post('/repos', { name: repoName, path: join(dir, 'repo'), password: 'restore-pw', init: true });
  expect(repo.status).toBe(201);
  repoId = repo.body.data.id;
  const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoId, source_paths: [src] });
  const run = await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=120`);
  expect(run.body.data.status).toBe('success');
  snapshotId = run.body.data.snapshot_id;

  const key = await h.api.post('/ssh-keys', { name: `key-${unique()}`, host: stackEnv().sshd.host });
  await appendFile(stackEnv().sshd.authorizedKeysFile, `${key.body.data.public_key}\n`);
  resticHostId = await createHost(`with-restic-${unique()}`, stackEnv().resticBinary, key.body.data.id);
  rsyncHostId = await createHost(`without-restic-${unique()}`, join(dir, 'no-restic-here'), key.body.data.id);
  // The host with restic backs up into the repository, so it may be given its password.
  expect((await h.api.post('/backup-jobs', { name: `on-host-${unique()}`, repo_id: repoId, host_id: resticHostId, source_paths: [src] })).status).toBe(201);

  for (const [key, value] of [['restore_managed_local_root', localRoot()], ['restore_managed_remote_root', remoteRoot()]]) {
    expect((await h.api.put(`/settings/${key}`, { value })).status).toBe(200);
  }
});

afterAll(async () => {
  if (small) execFileSync('umount', [small]);
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a full restore onto the control plane lands under the managed root, in the history and as an event', async () => {
  const res = await restore({ repo_id: repoId, snapshot_id: 'latest' });
  expect(res.status).toBe(200);
  const target = contextDir(localRoot());
  expect(res.body.data).toMatchObject({
    repo_id: repoId,
    repo_name: repoName,
    snapshot_id: snapshotId,
    host_id: null,
    destination_mode: 'managed',
    include: [],
    mode: 'full-local-managed',
    resolved_target: target,
    status: 'success',
    started_by: 'api:admin',
    workflow_id: `restore-${res.body.data.id}`,
    failure: null,
    summary: { transfer: 'local', bytes_restored: sourceBytes },
  });
  expect(res.headers.get('location')).toBe(`/api/v1/restores/${res.body.data.id}`);
  expect(filesUnder(join(target, src))).toEqual(['big.bin', 'docs/notes.md', 'docs/report.txt', 'weird/a1.txt', 'weird/a[1].txt', 'weird/b*.txt', 'weird/bb.txt', 'weird/c?.txt', 'weird/cc.txt']);
  expect(await readFile(join(target, src, 'docs', 'report.txt'), 'utf8')).toBe('quarterly numbers\n');

  expect((await h.api.get(`/restores/${res.body.data.id}`)).body.data).toEqual(res.body.data);
  const listed = await h.api.get(`/restores?repo_id=${repoId}&status=success`);
  expect(listed.body.data.map((r: { id: number }) => r.id)).toContain(res.body.data.id);
  const [event] = await h.sql<{ payload: Record<string, unknown> }>("select payload from events where type = 'restore.success' and (payload->>'id')::int = ?", [res.body.data.id]);
  expect(event?.payload).toMatchObject({ id: res.body.data.id, repo_id: repoId, snapshot_id: snapshotId });
});

test('include paths with glob characters restore exactly those paths, with restic on the host', async () => {
  const include = [join(src, 'weird', 'a[1].txt'), join(src, 'weird', 'b*.txt'), join(src, 'weird', 'c?.txt')];
  const res = await restore({ repo_id: repoId, snapshot_id: snapshotId.slice(0, 8), host_id: resticHostId, include });
  expect(res.body.data).toMatchObject({ status: 'success', host_id: resticHostId, mode: 'partial-remote-managed', include, summary: { transfer: 'on_host' } });
  const target = contextDir(remoteRoot());
  expect(res.body.data.resolved_target).toBe(target);
  expect(filesUnder(target)).toEqual(['a[1].txt', 'b*.txt', 'c?.txt'].map((name) => join(src, 'weird', name).slice(1)));
  expect(await readFile(join(target, src, 'weird', 'b*.txt'), 'utf8')).toBe('b*.txt\n');
  await rm(target, { recursive: true });
});

test('a host whose restic cannot open the repository gets the files through the worker and rsync', async () => {
  const include = [join(src, 'docs'), join(src, 'weird', 'a[1].txt')];
  const res = await restore({ repo_id: repoId, snapshot_id: snapshotId, host_id: rsyncHostId, include, append_context_subdir: false });
  expect(res.body.data).toMatchObject({ status: 'success', resolved_target: remoteRoot(), summary: { transfer: 'rsync' } });
  expect(res.body.data.warnings.join('\n')).toMatch(/does not back up into this repository.*restored through the worker and rsync/);
  expect(filesUnder(remoteRoot())).toEqual(['docs/notes.md', 'docs/report.txt', 'weird/a[1].txt'].map((name) => join(src, name).slice(1)));
  expect(await readFile(join(remoteRoot(), src, 'docs', 'notes.md'), 'utf8')).toBe('# notes\n');
  await rm(remoteRoot(), { recursive: true });

  // A host that backs up into the repository, but whose restic is missing: tried, then the worker.
  const job = await h.api.post('/backup-jobs', { name: `no-restic-${unique()}`, repo_id: repoId, host_id: rsyncHostId, source_paths: [src] });
  const second = await restore({ repo_id: repoId, snapshot_id: snapshotId, host_id: rsyncHostId, include: [join(src, 'docs', 'notes.md')] });
  expect(second.body.data).toMatchObject({ status: 'success', summary: { transfer: 'rsync' } });
  expect(second.body.data.warnings.join('\n')).toMatch(/restic on .* cannot open .*restored through the worker and rsync/);
  expect(filesUnder(contextDir(remoteRoot()))).toEqual([join(src, 'docs', 'notes.md').slice(1)]);
  await rm(remoteRoot(), { recursive: true });
  await h.api.delete(`/backup-jobs/${job.body.data.id}`);
});

test('a path the snapshot does not hold fails the restore, typed, and emits restore.failure', async () => {
  const res = await restore({ repo_id: repoId, snapshot_id: snapshotId, include: [join(src, 'nope')] });
  expect(res.body.data).toMatchObject({ status: 'failed', failure: { code: 'path_not_found' } });
  const [event] = await h.sql<{ payload: Record<string, unknown> }>("select payload from events where type = 'restore.failure' and (payload->>'id')::int = ?", [res.body.data.id]);
  expect(event?.payload).toMatchObject({ id: res.body.data.id, repo_id: repoId, snapshot_id: snapshotId, status: 'failed', failure: { code: 'path_not_found' } });
});

test('a target too small for the restore fails as disk_full before writing anything', async () => {
  small = join(dir, 'small');
  await mkdir(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
  expect((await h.api.patch(`/hosts/${rsyncHostId}`, { restore_managed_root: small })).status).toBe(200);
  const res = await restore({ repo_id: repoId, snapshot_id: snapshotId, host_id: rsyncHostId, include: [join(src, 'big.bin')] });
  expect(res.body.data).toMatchObject({ status: 'failed', failure: { code: 'disk_full' } });
  expect(res.body.data.failure.message).toMatch(/needs 2097152 bytes/);
  expect(filesUnder(small)).toEqual([]);
});

describe('bad requests are refused with nothing started', () => {
  let before: number;
  beforeEach(async () => {
    before = await h.count('restores');
  });
  afterEach(async () => {
    expect(await h.count('restores')).toBe(before);
  });

  test('include paths that escape or are not absolute', async () => {
    for (const include of [[`${src}/../etc/passwd`], ['relative/path'], `${src}/./docs`]) {
      const res = await restore({ repo_id: repoId, snapshot_id: snapshotId, include });
      expect(res.status).toBe(422);
      expect(['path_not_allowed', 'validation_error']).toContain(res.body.error.code);
    }
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, include: [`${src}/../x`] }), 422, 'path_not_allowed');
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, include: ['/'] }), 422, 'path_not_allowed');
  });

  test('managed roots that would put files over the system are refused, and setting them is privileged', async () => {
    for (const root of ['/', '/srv', '/etc/restores', '/usr/local/restores']) {
      expectFieldError(await h.api.patch(`/hosts/${rsyncHostId}`, { restore_managed_root: root }), 'restore_managed_root');
      expectFieldError(await h.api.put('/settings/restore_managed_remote_root', { value: root }), 'value');
    }
    const operator = await h.createCaller({ user: { role: 'restore-operator', permissions: ['hosts.manage', 'restore.run', 'restore.view'] } });
    expectError(await operator.api.patch(`/hosts/${rsyncHostId}`, { restore_managed_root: join(dir, 'elsewhere') }), 403, 'admin_required');
    expectError(await operator.api.patch(`/hosts/${rsyncHostId}`, { restore_original_enabled: true }), 403, 'admin_required');
  });

  test('unknown repositories, snapshots and hosts', async () => {
    expectFieldError(await restore({ repo_id: 999999, snapshot_id: 'latest' }), 'repo_id');
    expectFieldError(await restore({ repo_id: repoId, snapshot_id: 'deadbeef' }), 'snapshot_id');
    expectFieldError(await restore({ repo_id: repoId, snapshot_id: snapshotId, host_id: 999999 }), 'host_id');
  });

  test('a restore to the original location is guarded by role, settings, host and allow-list', async () => {
    const include = [join(src, 'docs', 'report.txt')];
    const operator = await h.createCaller({ user: { role: 'restore-operator' } });
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original', include }, operator.api), 403, 'admin_required');
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original', include }), 422, 'original_restore_disabled');
    await h.api.put('/settings/restore_original_global_enabled', { value: true });
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original', host_id: resticHostId, include }), 422, 'original_restore_disabled');
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original', include }), 422, 'path_not_allowed');
    await h.api.put('/settings/restore_original_allowed_paths', { value: [join(src, 'weird')] });
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original', include }), 422, 'path_not_allowed');
    // The whole snapshot reaches beyond the allowed directory too.
    expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original' }), 422, 'path_not_allowed');
    await h.api.put('/settings/restore_original_global_enabled', { value: false });
  });
});

test('an allowed restore to the original location puts a lost file back', async () => {
  await h.api.put('/settings/restore_original_global_enabled', { value: true });
  await h.api.put('/settings/restore_original_allowed_paths', { value: [join(src, 'docs')] });
  await unlink(join(src, 'docs', 'report.txt'));
  const res = await restore({ repo_id: repoId, snapshot_id: snapshotId, destination_mode: 'original', include: [join(src, 'docs', 'report.txt')] });
  expect(res.body.data).toMatchObject({ status: 'success', resolved_target: '/', mode: 'partial-local-original' });
  expect(await readFile(join(src, 'docs', 'report.txt'), 'utf8')).toBe('quarterly numbers\n');
  await h.api.put('/settings/restore_original_global_enabled', { value: false });
});

test('a caller limited to other repositories or hosts sees none of these restores', async () => {
  const other = await h.api.post('/repos', { name: `other-${unique()}`, path: join(dir, 'other'), password: 'pw' });
  const repoLimited = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [other.body.data.id] } });
  const hostLimited = await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [rsyncHostId] } });
  const all = (await h.api.get(`/restores?repo_id=${repoId}&per_page=200`)).body.data as { id: number; host_id: number | null }[];
  expect(all.length).toBeGreaterThan(3);
  expect((await repoLimited.api.get('/restores')).body.data).toEqual([]);
  expect((await repoLimited.api.get(`/restores?repo_id=${repoId}`)).body.data).toEqual([]);
  expectError(await repoLimited.api.get(`/restores/${all[0]?.id}`), 403, 'repo_not_in_scope');
  // A host-limited caller sees the restores onto its host, not those onto the control plane or other hosts.
  const seen = (await hostLimited.api.get('/restores?per_page=200')).body.data.map((r: { id: number }) => r.id);
  expect(seen.sort()).toEqual(all.filter((r) => r.host_id === rsyncHostId).map((r) => r.id).sort());
  const local = all.find((r) => r.host_id === null);
  expectError(await hostLimited.api.get(`/restores/${local?.id}`), 403, 'host_not_in_scope');
  expectError(await restore({ repo_id: repoId, snapshot_id: snapshotId }, hostLimited.api), 403, 'host_not_in_scope');
});
