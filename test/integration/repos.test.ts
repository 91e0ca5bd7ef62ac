import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupJob, Repo } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { startHarness, type Harness } from '../support/harness';
import { restic } from '../support/restic';
import { stackEnv } from '../support/stack-env';
import { ISO, expectError, expectFieldError, unique } from '../support/expectations';

/**
 * Repositories through the API: registration, listing, updates, deletion, the filesystem guard,
 * write-only passwords, and `init: true`, which has the worker run a real `restic init`.
 */
let h: Harness;
let dir: string;

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-repos-'));
});
afterAll(async () => {
  await h?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const newRepo = (extra: Record<string, unknown> = {}) => ({
  name: `repo-${unique()}`,
  path: `/srv/backups/${unique()}`,
  password: `pw-${unique()}-${unique()}`,
  ...extra,
});

async function repoRows(): Promise<number> {
  return h.services.orm.em.fork().count(Repo, {});
}

async function storedPasswordSecret(id: number): Promise<string | null> {
  const rows = await h.sql<{ password_secret: string | null }>(
    'select password_secret from repos where id = ?',
    [id],
  );
  return rows[0]?.password_secret ?? null;
}

async function createHost(): Promise<number> {
  const res = await h.api.post('/hosts', { name: `host-${unique()}`, hostname: 'backup.example.internal' });
  expect(res.status).toBe(201);
  return res.body.data.id;
}

describe('create, read, update, delete', () => {
  test('POST /repos answers 201 with the repository and the documented defaults', async () => {
    const body = newRepo({ description: 'nightly', notify_email: 'ops@example.com' });
    const before = Date.now();
    const res = await h.api.post('/repos', body);
    expect(res.status).toBe(201);
    expect(res.body.error).toBeNull();
    expect(res.body.data).toEqual({
      id: expect.any(Number),
      name: body.name,
      path: body.path,
      description: 'nightly',
      alert_hours: 25,
      notify_email: 'ops@example.com',
      password_source: 'local',
      ssh_host_id: null,
      snapshots_refreshed_at: null,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    expect(Date.parse(res.body.data.created_at)).toBeGreaterThanOrEqual(before - 5000);
    expect(res.text).not.toContain(body.password);

    const minimal = await h.api.post('/repos', newRepo());
    expect(minimal.status).toBe(201);
    expect(minimal.body.data).toMatchObject({ description: null, notify_email: null, alert_hours: 25, password_source: 'local' });
  });

  test('the 201 carries a Location header naming the new repository', async () => {
    const res = await h.api.post('/repos', newRepo());
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/repos/${res.body.data.id}`);
  });

  test('GET /repos/{id} returns what was created; an unknown id is 404', async () => {
    const body = newRepo({ alert_hours: 48 });
    const created = await h.api.post('/repos', body);
    const got = await h.api.get(`/repos/${created.body.data.id}`);
    expect(got.status).toBe(200);
    expect(got.body.data).toEqual(created.body.data);
    expect(got.text).not.toContain(body.password);

    expectError(await h.api.get('/repos/999999'), 404, 'not_found');
  });

  test('GET /repos is paginated in a stable id order with page meta', async () => {
    for (let i = 0; i < 5; i++) expect((await h.api.post('/repos', newRepo())).status).toBe(201);
    const total = await repoRows();

    const all = await h.api.get('/repos?per_page=200');
    expect(all.status).toBe(200);
    expect(all.body.meta).toEqual({ page: 1, per_page: 200, total, total_pages: 1 });
    expect(all.body.data).toHaveLength(total);
    const ids = all.body.data.map((r: { id: number }) => r.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));

    const defaults = await h.api.get('/repos');
    expect(defaults.body.meta).toMatchObject({ page: 1, per_page: 50, total });

    const paged: number[] = [];
    const pages = Math.ceil(total / 2);
    for (let page = 1; page <= pages; page++) {
      const res = await h.api.get(`/repos?page=${page}&per_page=2`);
      expect(res.body.meta).toEqual({ page, per_page: 2, total, total_pages: pages });
      expect(res.body.data.length).toBe(page < pages ? 2 : total - 2 * (pages - 1));
      paged.push(...res.body.data.map((r: { id: number }) => r.id));
    }
    expect(paged).toEqual(ids);

    const beyond = await h.api.get(`/repos?page=${pages + 1}&per_page=2`);
    expect(beyond.status).toBe(200);
    expect(beyond.body.data).toEqual([]);
    expect(beyond.body.meta).toEqual({ page: pages + 1, per_page: 2, total, total_pages: pages });

    // Same request, same order.
    expect((await h.api.get('/repos?per_page=200')).body.data.map((r: { id: number }) => r.id)).toEqual(ids);
  });

  test('per_page is capped at 200: above is 422 naming per_page', async () => {
    expect((await h.api.get('/repos?per_page=200')).status).toBe(200);
    expectFieldError(await h.api.get('/repos?per_page=201'), 'per_page');
    expectFieldError(await h.api.get('/repos?per_page=0'), 'per_page');
    expectFieldError(await h.api.get('/repos?page=0'), 'page');
  });

  test('PATCH changes each field and answers with the updated repository', async () => {
    const created = (await h.api.post('/repos', newRepo())).body.data;
    const hostId = await createHost();
    const changes: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ name: 'renamed' }, { name: 'renamed' }],
      [{ path: '/srv/backups/moved' }, { path: '/srv/backups/moved' }],
      [{ path: 'sftp:backup@example.internal:/srv/restic' }, { path: 'sftp:backup@example.internal:/srv/restic' }],
      [{ description: 'weekly' }, { description: 'weekly' }],
      [{ description: null }, { description: null }],
      [{ alert_hours: 72 }, { alert_hours: 72 }],
      [{ notify_email: 'team@example.com' }, { notify_email: 'team@example.com' }],
      [{ notify_email: null }, { notify_email: null }],
      [{ ssh_host_id: hostId }, { ssh_host_id: hostId }],
      [{ ssh_host_id: null }, { ssh_host_id: null }],
    ];
    for (const [patch, expected] of changes) {
      const res = await h.api.patch(`/repos/${created.id}`, patch);
      expect({ patch, status: res.status }).toEqual({ patch, status: 200 });
      expect(res.body.data).toMatchObject(expected);
      expect((await h.api.get(`/repos/${created.id}`)).body.data).toMatchObject(expected);
    }
    const final = (await h.api.get(`/repos/${created.id}`)).body.data;
    expect(final).toMatchObject({ id: created.id, created_at: created.created_at, password_source: 'local' });
    expect(Date.parse(final.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));
  });

  test('PATCH password replaces the stored password without ever echoing it', async () => {
    const body = newRepo();
    const created = (await h.api.post('/repos', body)).body.data;
    const sealedBefore = await storedPasswordSecret(created.id);

    const rotated = `rotated-${unique()}-${unique()}`;
    const res = await h.api.patch(`/repos/${created.id}`, { password: rotated });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(rotated);
    expect(res.text).not.toContain(body.password);
    expect(res.body.data).not.toHaveProperty('password');

    const sealedAfter = await storedPasswordSecret(created.id);
    expect(sealedAfter).not.toBeNull();
    expect(sealedAfter).not.toBe(sealedBefore);
    expect(sealedAfter).not.toContain(rotated);
    expect(h.services.secrets.open(sealedAfter as string, SecretPurpose.repoPassword)).toBe(rotated);
  });

  test('PATCH refuses bad input and changes nothing', async () => {
    const created = (await h.api.post('/repos', newRepo())).body.data;
    expectFieldError(await h.api.patch(`/repos/${created.id}`, { path: 'relative/dir' }), 'path');
    expectFieldError(await h.api.patch(`/repos/${created.id}`, { path: '/srv/../etc' }), 'path');
    expectFieldError(await h.api.patch(`/repos/${created.id}`, { alert_hours: 0 }), 'alert_hours');
    expectFieldError(await h.api.patch(`/repos/${created.id}`, { ssh_host_id: 999999 }), 'ssh_host_id');
    expectError(await h.api.patch(`/repos/${created.id}`, {}), 422, 'validation_error');
    expectError(await h.api.patch('/repos/999999', { name: 'ghost' }), 404, 'not_found');
    expect((await h.api.get(`/repos/${created.id}`)).body.data).toEqual(created);
  });

  test('DELETE answers 204, then the repository is gone (404)', async () => {
    const created = (await h.api.post('/repos', newRepo())).body.data;
    const res = await h.api.delete(`/repos/${created.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expectError(await h.api.get(`/repos/${created.id}`), 404, 'not_found');
    expectError(await h.api.delete(`/repos/${created.id}`), 404, 'not_found');
    expect((await h.api.get('/repos?per_page=200')).body.data.map((r: { id: number }) => r.id)).not.toContain(created.id);
    const events = await h.sql<{ type: string; payload: Record<string, unknown> }>("select type, payload from events where type like 'repo.%' and (payload->>'id')::int = ? order by id", [created.id]);
    expect(events).toEqual([
      { type: 'repo.created', payload: { id: created.id, name: created.name, path: created.path } },
      { type: 'repo.deleted', payload: { id: created.id, name: created.name, path: created.path } },
    ]);
  });

  test('a repository used by a backup job cannot be deleted (409 repo_in_use) until the job is gone', async () => {
    const repo = (await h.api.post('/repos', newRepo())).body.data;
    const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repo.id, source_paths: ['/srv/data'] });
    expect(job.status).toBe(201);

    expectError(await h.api.delete(`/repos/${repo.id}`), 409, 'repo_in_use');
    expect((await h.api.get(`/repos/${repo.id}`)).status).toBe(200);
    expect(await h.services.orm.em.fork().count(BackupJob, { repo: repo.id })).toBe(1);

    expect((await h.api.delete(`/backup-jobs/${job.body.data.id}`)).status).toBe(204);
    expect((await h.api.delete(`/repos/${repo.id}`)).status).toBe(204);
  });
});

describe('the password is write-only', () => {
  test('it appears in no response and is stored sealed', async () => {
    const body = newRepo();
    const texts: string[] = [];
    const created = await h.api.post('/repos', body);
    texts.push(created.text);
    texts.push((await h.api.get(`/repos/${created.body.data.id}`)).text);
    texts.push((await h.api.get('/repos?per_page=200')).text);
    texts.push((await h.api.patch(`/repos/${created.body.data.id}`, { description: 'x' })).text);
    for (const text of texts) {
      expect(text).not.toContain(body.password);
      expect(text).not.toMatch(/password_secret|"password"/);
    }

    const sealed = await storedPasswordSecret(created.body.data.id);
    expect(sealed).toEqual(expect.any(String));
    expect(sealed).not.toContain(body.password);
    expect(sealed).not.toContain(Buffer.from(body.password).toString('base64'));
    expect(sealed).not.toContain(Buffer.from(body.password).toString('base64url'));
    expect(sealed).not.toContain(Buffer.from(body.password).toString('hex'));
  });
});

describe('validation', () => {
  test.each([
    ['a relative path', 'backups/relative'],
    ['a path with ..', '/srv/backups/../../etc'],
    ['a path under /proc', '/proc/x'],
    ['a path under /sys', '/sys/kernel/x'],
    ['a path under /dev', '/dev/shm/repo'],
    ['a path with a control character', '/srv/backups/a\nb'],
  ])('%s is 422 naming path, and nothing is created', async (_what, path) => {
    const before = await repoRows();
    expectFieldError(await h.api.post('/repos', newRepo({ path })), 'path');
    expect(await repoRows()).toBe(before);
  });

  test('restic backend strings are accepted as paths', async () => {
    for (const path of ['sftp:backup@example.internal:/srv/restic', 'rest:https://backup.example.com/repo', 's3:s3.amazonaws.com/bucket/restic']) {
      const res = await h.api.post('/repos', newRepo({ path }));
      expect({ path, status: res.status }).toEqual({ path, status: 201 });
      expect(res.body.data.path).toBe(path);
    }
  });

  test('a missing password is 422 missing_field naming password', async () => {
    const before = await repoRows();
    const { password: _password, ...body } = newRepo();
    const res = await h.api.post('/repos', body);
    expectError(res, 422, 'missing_field');
    expect(res.body.error.field).toBe('password');
    expect(await repoRows()).toBe(before);
  });

  test('an unsupported password_source is 422 naming password_source', async () => {
    const before = await repoRows();
    expectFieldError(await h.api.post('/repos', newRepo({ password_source: 'agent' })), 'password_source');
    expectFieldError(await h.api.post('/repos', newRepo({ password_source: 'infisical' })), 'password_source');
    expectFieldError(await h.api.post('/repos', newRepo({ password_source: 'vault' })), 'password_source');
    expect(await repoRows()).toBe(before);
  });

  test('an unknown ssh_host_id is 422 naming ssh_host_id', async () => {
    const before = await repoRows();
    expectFieldError(await h.api.post('/repos', newRepo({ path: 'sftp:backup@example.internal:/srv/r', ssh_host_id: 999999 })), 'ssh_host_id');
    expect(await repoRows()).toBe(before);

    const hostId = await createHost();
    const ok = await h.api.post('/repos', newRepo({ path: 'sftp:backup@example.internal:/srv/r', ssh_host_id: hostId }));
    expect(ok.status).toBe(201);
    expect(ok.body.data.ssh_host_id).toBe(hostId);
  });

  test('unknown fields and out-of-range values are 422 naming them', async () => {
    const before = await repoRows();
    expectFieldError(await h.api.post('/repos', newRepo({ colour: 'blue' })), 'colour');
    expectFieldError(await h.api.post('/repos', newRepo({ alert_hours: 0 })), 'alert_hours');
    expectFieldError(await h.api.post('/repos', newRepo({ notify_email: 'not-an-email' })), 'notify_email');
    expectFieldError(await h.api.post('/repos', newRepo({ name: '' })), 'name');
    expect(await repoRows()).toBe(before);
  });

  test('a NUL character in a text field is a 4xx naming the field, not a 500', async () => {
    const before = await repoRows();
    const description = await h.api.post('/repos', newRepo({ description: 'nightly\u0000copy' }));
    expect(description.status).not.toBe(500);
    expectFieldError(description, 'description');
    expectFieldError(await h.api.post('/repos', newRepo({ name: 'nul\u0000name' })), 'name');
    expect(await repoRows()).toBe(before);
  });
});

describe('init: true', () => {
  test('concurrent inits of one path: exactly one repository is created, the others are refused', async () => {
    const before = await repoRows();
    const path = join(dir, `race-${unique()}`);
    const answers = await Promise.all([1, 2, 3, 4].map((n) => h.api.post('/repos', newRepo({ path, password: `pw-${n}`, init: true }))));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409]);
    for (const refused of answers.filter((a) => a.status === 409)) {
      expect(['repo_init_in_progress', 'repo_already_initialized']).toContain(refused.body.error.code);
    }
    expect(await repoRows()).toBe(before + 1);
    const created = answers.find((a) => a.status === 201);
    const snapshots = await h.api.get(`/repos/${created?.body.data.id}/snapshots?refresh=true`);
    expect(snapshots.status).toBe(200);
  });

  test('creates a real restic repository at the path', async () => {
    const path = join(dir, `init-${unique()}`);
    const body = newRepo({ path, init: true });
    const res = await h.api.post('/repos', body);
    expect(res.status).toBe(201);
    expect(res.text).not.toContain(body.password);
    expect(res.body.data.path).toBe(path);

    const config = restic(path, body.password as string, ['cat', 'config']);
    expect({ status: config.status, stderr: config.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(JSON.parse(config.stdout)).toMatchObject({ version: expect.any(Number), id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // The repository opens with the registered password only.
    expect(restic(path, 'not-the-password', ['cat', 'config']).status).not.toBe(0);

    expect((await h.api.get(`/repos/${res.body.data.id}`)).status).toBe(200);
  });

  test('on a path that already holds a restic repository: 409 repo_already_initialized, no row', async () => {
    const path = join(dir, `existing-${unique()}`);
    const first = newRepo({ path, init: true });
    expect((await h.api.post('/repos', first)).status).toBe(201);
    const configBefore = restic(path, first.password as string, ['cat', 'config']).stdout;

    const before = await repoRows();
    const second = newRepo({ path, init: true });
    const res = await h.api.post('/repos', second);
    expectError(res, 409, 'repo_already_initialized');
    expect(res.text).not.toContain(second.password);
    expect(await repoRows()).toBe(before);
    expect(await h.services.orm.em.fork().count(Repo, { name: second.name })).toBe(0);
    // A repository that was never kept was never announced.
    expect(await h.count('events', "type = 'repo.created' and payload->>'name' = ?", [second.name])).toBe(0);

    // The existing repository is untouched.
    expect(restic(path, first.password as string, ['cat', 'config']).stdout).toBe(configBefore);
  });

  test('on an unwritable location: 422 repo_init_failed, no row', async () => {
    const file = join(dir, `regular-file-${unique()}`);
    await writeFile(file, 'not a directory\n');
    const before = await repoRows();
    const body = newRepo({ path: join(file, 'repo'), init: true });
    const res = await h.api.post('/repos', body);
    expectError(res, 422, 'repo_init_failed');
    expect(res.body.error.message.length).toBeGreaterThan(0);
    expect(res.text).not.toContain(body.password);
    expect(await repoRows()).toBe(before);
    expect(await h.services.orm.em.fork().count(Repo, { name: body.name })).toBe(0);
  });
});

describe('X-Dry-Run', () => {
  test('validates fully, answers what would happen, and changes nothing', async () => {
    const before = await repoRows();
    const dry = await h.api.post('/repos', newRepo({ password: 'pw' }), { headers: { 'X-Dry-Run': '1' } });
    expect(dry.status).toBe(200);
    expect(dry.body.data).toEqual({ dry_run: true });
    expectFieldError(await h.api.post('/repos', newRepo({ path: 'relative/path', password: 'pw' }), { headers: { 'X-Dry-Run': '1' } }), 'path');
    expect(await repoRows()).toBe(before);

    const created = await h.api.post('/repos', newRepo({ password: 'pw' }));
    const id = created.body.data.id;
    const deleting = await h.api.delete(`/repos/${id}`, { headers: { 'X-Dry-Run': 'true' } });
    expect(deleting.status).toBe(200);
    expect(deleting.body.data).toEqual({ dry_run: true, would_delete: { repo: created.body.data } });
    expect((await h.api.patch(`/repos/${id}`, { name: 'renamed' }, { headers: { 'X-Dry-Run': '1' } })).body.data).toEqual({ dry_run: true });
    expect((await h.api.get(`/repos/${id}`)).body.data).toEqual(created.body.data);
    // X-Dry-Run: 0 is an ordinary request.
    expect((await h.api.delete(`/repos/${id}`, { headers: { 'X-Dry-Run': '0' } })).status).toBe(204);
  });
});

describe('sftp repositories', () => {
  test('are initialised and listed through their SSH host, once its full host key is known', async () => {
    const sshd = stackEnv().sshd;
    const key = await h.api.post('/ssh-keys', { name: `sftp-${unique()}`, host: sshd.host, port: sshd.port, user: sshd.user });
    await appendFile(sshd.authorizedKeysFile, `${key.body.data.public_key}\n`);
    // Pinned by fingerprint only: OpenSSH needs the key itself, which the first test records.
    const host = await h.api.post('/hosts', {
      name: `sftp-${unique()}`, hostname: sshd.host, port: sshd.port, user: sshd.user,
      ssh_key_id: key.body.data.id, host_key_fingerprint: sshd.hostKeyFingerprint, restic_path: stackEnv().resticBinary,
    });
    const location = join(dir, `sftp-${unique()}`);
    const body = newRepo({ path: `sftp:${sshd.user}@${sshd.host}:${location}`, ssh_host_id: host.body.data.id, init: true });
    const before = await repoRows();
    const refused = await h.api.post('/repos', body);
    expectError(refused, 422, 'repo_init_failed');
    expect(refused.body.error.message).toMatch(/test the host/);
    expect(await repoRows()).toBe(before);

    expect((await h.api.post(`/hosts/${host.body.data.id}/test`)).body.data).toMatchObject({ success: true, host_key: { status: 'verified' } });
    const created = await h.api.post('/repos', body);
    expect(created.status).toBe(201);
    expect(restic(location, body.password as string, ['cat', 'config']).status).toBe(0);
    const snapshots = await h.api.get(`/repos/${created.body.data.id}/snapshots?refresh=true`);
    expect(snapshots.status).toBe(200);
    expect(snapshots.body.meta.total).toBe(0);
  });
});
