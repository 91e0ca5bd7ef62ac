import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mintAdminToken } from '../../db/first-admin';
import { SecretBox } from '../../db/secret-box';
import { verifySecretKey } from '../../db/secret-key-check';
import { startHarness, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

describe('the secret key check at start-up', () => {
  test('passes on an empty database and with the right key, fails with another key', async () => {
    const other = new SecretBox(randomBytes(32));
    await expect(verifySecretKey(h.services.orm.em.fork(), other)).resolves.toBeUndefined();
    expect((await h.api.post('/repos', { name: 'sealed', path: '/srv/sealed', password: 'pw' })).status).toBe(201);
    await expect(verifySecretKey(h.services.orm.em.fork(), h.services.secrets)).resolves.toBeUndefined();
    await expect(verifySecretKey(h.services.orm.em.fork(), other)).rejects.toThrow(/does not open the secrets stored in this database/);
  });
});

describe('npm run admin-token', () => {
  test('mints a new working all-scope token for the admin; the old one keeps working', async () => {
    const minted = await mintAdminToken(h.config.databaseUrl);
    expect(minted?.username).toBe('admin');
    expect(minted?.token).toMatch(/^rui_[0-9a-f]{8}_[0-9a-f]{40}$/);
    const me = await h.api.withToken(minted?.token ?? null).get('/me');
    expect(me.status).toBe(200);
    expect(me.body.data.token.scopes).toHaveLength(34);
    expect((await h.api.get('/me')).status).toBe(200);
  });

  test('finds no admin of another name', async () => {
    expect(await mintAdminToken(h.config.databaseUrl, 'nobody')).toBeNull();
  });
});

describe('npm run setting', () => {
  // Asynchronous: the API under test runs in this process and must keep answering meanwhile
  // (a blocked event loop lets its idle keep-alive sockets expire under the client).
  const setting = (...args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['scripts/bootstrap.mjs', 'setting', ...args], { env: { ...process.env, DATABASE_URL: h.config.databaseUrl } }, (error, stdout, stderr) =>
        resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });

  test('switches the API back on after it was switched off through the API', async () => {
    expect((await h.api.put('/settings/api_enabled', { value: false })).status).toBe(200);
    expect((await h.api.get('/me')).status).toBe(503);
    const enabled = await setting('api_enabled', 'true');
    expect({ status: enabled.status, stdout: enabled.stdout }).toEqual({ status: 0, stdout: 'true\n' });
    expect((await h.api.get('/me')).status).toBe(200);
    expect((await setting('api_enabled')).stdout).toBe('true\n');
  });

  test('refuses unknown keys and values of the wrong type, changing nothing', async () => {
    const unknown = await setting('no_such_setting', '1');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown setting/);
    const wrong = await setting('cron_run_minute', '60');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/between 0 and 59/);
    expect((await h.api.get('/settings/cron_run_minute')).body.data.value).toBe(0);
  });
});
