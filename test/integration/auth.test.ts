import { randomBytes } from 'node:crypto';
import { ALL_SCOPES } from '../../api/auth/scopes';
import { hashToken } from '../../api/auth/tokens';
import { ApiToken, Repo, User } from '../../db/entities';
import type { ApiResponse } from '../support/api-client';
import { startHarness, type Harness } from '../support/harness';
import { expectError } from '../support/expectations';

/**
 * The authentication and authorisation chain, and the generic errors of the API (routing, JSON,
 * contract validation), as a client sees them: status, envelope and machine code.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

/** An error answer with exactly the envelope `{data: null, meta: null, error: {code, message, ...extra}}`. */
function expectExactError(res: ApiResponse, status: number, code: string, extra: Record<string, unknown> = {}): void {
  expectError(res, status, code, extra);
  expect(res.body).toEqual({ data: null, meta: null, error: { code, message: expect.any(String), ...extra } });
}

async function repoCount(): Promise<number> {
  return h.services.orm.em.fork().count(Repo, {});
}

/** Changes the stored token (and its user) the way an administrator would. */
async function alterToken(token: string, change: (row: ApiToken) => void): Promise<void> {
  const em = h.services.orm.em.fork();
  const row = await em.findOneOrFail(ApiToken, { tokenHash: hashToken(token) }, { populate: ['user'] });
  change(row);
  await em.flush();
}

const validRepo = () => ({ name: `repo-${randomBytes(3).toString('hex')}`, path: `/srv/backups/${randomBytes(4).toString('hex')}`, password: 'hunter2-auth' });

describe('the bearer token', () => {
  test('no Authorization header is 401 missing_token', async () => {
    expectExactError(await h.api.get('/repos', { token: null }), 401, 'missing_token');
    expectExactError(await h.api.get('/me', { token: null }), 401, 'missing_token');
  });

  test('an Authorization header that is not a bearer token is 401 missing_token', async () => {
    expectExactError(await h.api.get('/me', { token: null, headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } }), 401, 'missing_token');
  });

  test('a malformed token is 401 invalid_token', async () => {
    expectExactError(await h.api.get('/me', { token: 'garbage' }), 401, 'invalid_token');
  });

  test('a well-formed token that does not exist is 401 invalid_token', async () => {
    const unknown = `rui_${randomBytes(4).toString('hex')}_${randomBytes(20).toString('hex')}`;
    expectExactError(await h.api.get('/me', { token: unknown }), 401, 'invalid_token');
  });

  test('a revoked token is 401 token_revoked', async () => {
    const token = await h.createToken({ scopes: ['me:read'] });
    expect((await h.api.get('/me', { token })).status).toBe(200);
    await alterToken(token, (row) => {
      row.revokedAt = new Date();
      row.revokedReason = 'leaked';
    });
    expectExactError(await h.api.get('/me', { token }), 401, 'token_revoked');
  });

  test('an expired token is 401 token_expired; one expiring later still works', async () => {
    const token = await h.createToken({ scopes: ['me:read'] });
    await alterToken(token, (row) => {
      row.expiresAt = new Date(Date.now() + 3_600_000);
    });
    const before = await h.api.get('/me', { token });
    expect(before.status).toBe(200);
    expect(before.body.data.token.expires_at).not.toBeNull();

    await alterToken(token, (row) => {
      row.expiresAt = new Date(Date.now() - 1000);
    });
    expectExactError(await h.api.get('/me', { token }), 401, 'token_expired');
  });

  test('the admin token of a fresh installation holds the 34 scopes', async () => {
    const me = await h.api.get('/me');
    expect(me.status).toBe(200);
    expect(me.body.data.user).toMatchObject({ username: 'admin', role: 'admin' });
    expect([...me.body.data.token.scopes].sort()).toEqual([...ALL_SCOPES].sort());
    expect(me.body.data.token.scopes).toHaveLength(34);
  });
});

describe('scopes and permissions', () => {
  test('a token without the scope of the operation is 403 insufficient_scope naming the scope', async () => {
    const token = await h.createToken({ scopes: ['me:read'] });
    expectExactError(await h.api.get('/repos', { token }), 403, 'insufficient_scope', { required_scope: 'repos:read' });
    const before = await repoCount();
    expectExactError(await h.api.post('/repos', validRepo(), { token }), 403, 'insufficient_scope', { required_scope: 'repos:write' });
    expect(await repoCount()).toBe(before);
  });

  test('a read-only token is 403 read_only_token on a write, and reads work', async () => {
    const token = await h.createToken({ scopes: ['repos:read', 'repos:write'], readOnly: true });
    const before = await repoCount();
    expectExactError(await h.api.post('/repos', validRepo(), { token }), 403, 'read_only_token', { required_scope: 'repos:write' });
    expect(await repoCount()).toBe(before);

    const list = await h.api.get('/repos', { token });
    expect(list.status).toBe(200);
    expect(list.body.meta.total).toBe(before);
  });

  test("a scope the user's role no longer allows is 403 permission_revoked; the allowed scope works", async () => {
    const token = await h.createToken({ scopes: ['me:read', 'repos:read', 'repos:write'], role: 'viewer' });
    const before = await repoCount();
    expectExactError(await h.api.post('/repos', validRepo(), { token }), 403, 'permission_revoked', { required_scope: 'repos:write' });
    expect(await repoCount()).toBe(before);
    expect((await h.api.get('/repos', { token })).status).toBe(200);
  });

  test('a permission taken from the user takes effect on the next request', async () => {
    const token = await h.createToken({ scopes: ['repos:read'], role: 'admin' });
    expect((await h.api.get('/repos', { token })).status).toBe(200);
    await alterToken(token, (row) => {
      row.user.permissions = ['logs.view'];
    });
    expectExactError(await h.api.get('/repos', { token }), 403, 'permission_revoked', { required_scope: 'repos:read' });
  });

  test('GET /me lists the effective scopes: token scopes within what the user may do', async () => {
    const viewer = await h.createToken({ scopes: ['me:read', 'repos:read', 'repos:write', 'hosts:read'], role: 'viewer' });
    const me = await h.api.get('/me', { token: viewer });
    expect(me.status).toBe(200);
    expect(me.body.data.user.role).toBe('viewer');
    expect([...me.body.data.token.scopes].sort()).toEqual(['me:read', 'repos:read']);

    const readOnly = await h.createToken({ scopes: ['me:read', 'repos:read', 'repos:write'], readOnly: true });
    const meReadOnly = await h.api.get('/me', { token: readOnly });
    expect(meReadOnly.body.data.token.read_only).toBe(true);
    expect([...meReadOnly.body.data.token.scopes].sort()).toEqual(['me:read', 'repos:read']);
  });
});

describe('the token owner', () => {
  test('a disabled user is 403 user_disabled', async () => {
    const token = await h.createToken({ scopes: ['me:read', 'repos:read'] });
    expect((await h.api.get('/repos', { token })).status).toBe(200);
    await alterToken(token, (row) => {
      row.user.enabled = false;
    });
    expectExactError(await h.api.get('/repos', { token }), 403, 'user_disabled');
    expectExactError(await h.api.get('/me', { token }), 403, 'user_disabled');
  });

  test('a suspended user is 403 user_suspended until the suspension ends', async () => {
    const token = await h.createToken({ scopes: ['me:read'] });
    await alterToken(token, (row) => {
      row.user.suspendedUntil = new Date(Date.now() + 3_600_000);
    });
    expectExactError(await h.api.get('/me', { token }), 403, 'user_suspended');

    await alterToken(token, (row) => {
      row.user.suspendedUntil = new Date(Date.now() - 1000);
    });
    expect((await h.api.get('/me', { token })).status).toBe(200);
  });

  test('the user row behind a token is the one that is checked', async () => {
    // Disabling another user does not affect this token.
    const token = await h.createToken({ scopes: ['me:read'] });
    const other = await h.createToken({ scopes: ['me:read'] });
    await alterToken(other, (row) => {
      row.user.enabled = false;
    });
    expect((await h.api.get('/me', { token })).status).toBe(200);
    const em = h.services.orm.em.fork();
    expect(await em.count(User, { enabled: false })).toBeGreaterThanOrEqual(1);
  });
});

describe('public endpoints', () => {
  const anonymous = () => h.api.withToken(null);

  test('health, openapi.json, docs and swagger answer without a token', async () => {
    const health = await anonymous().get('/health');
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');

    const document = await anonymous().get('/openapi.json');
    expect(document.status).toBe(200);
    expect(document.body.openapi).toMatch(/^3\./);

    for (const path of ['/docs', '/swagger']) {
      const page = await anonymous().get(path);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    }
  });

  test('a bad token does not break the public endpoints', async () => {
    const health = await h.api.get('/health', { token: 'garbage' });
    expect(health.status).toBe(200);
  });
});

describe('routing, JSON and validation errors', () => {
  test('an unknown path is 404 not_found, with or without a token', async () => {
    expectExactError(await h.api.get('/no-such-thing'), 404, 'not_found');
    expectExactError(await h.api.get('/no-such-thing', { token: null }), 404, 'not_found');
    expectExactError(await h.api.get('/repos/1/no-such-thing'), 404, 'not_found');
  });

  test('a wrong method on a known path is 405 method_not_allowed', async () => {
    const before = await repoCount();
    expectExactError(await h.api.put('/repos', validRepo()), 405, 'method_not_allowed');
    expectExactError(await h.api.delete('/repos'), 405, 'method_not_allowed');
    expectExactError(await h.api.post('/me', {}), 405, 'method_not_allowed');
    expect(await repoCount()).toBe(before);
  });

  test('a 405 names the allowed methods in an Allow header', async () => {
    const res = await h.api.put('/repos', validRepo());
    expect(res.status).toBe(405);
    const allowed = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim().toUpperCase()).sort();
    expect(allowed).toEqual(['GET', 'POST']);
  });

  test('a malformed JSON body is 400 invalid_json and creates nothing', async () => {
    const before = await repoCount();
    expectExactError(await h.api.post('/repos', '{"name": "x", "path": '), 400, 'invalid_json');
    expectExactError(await h.api.post('/repos', "{'name': 'single quotes'}"), 400, 'invalid_json');
    expect(await repoCount()).toBe(before);
  });

  test('a body that fails the schema is 422 validation_error naming each failing field', async () => {
    const before = await repoCount();
    const res = await h.api.post('/repos', { path: '/srv/backups/x', password: 'p', alert_hours: 0, colour: 'blue' });
    expectExactError(res, 422, 'validation_error', { fields: expect.any(Array) });
    const fields = res.body.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['name', 'alert_hours', 'colour']));
    for (const f of res.body.error.fields) expect(f.message).toEqual(expect.any(String));

    const wrongType = await h.api.post('/repos', { name: 'x', path: 42, password: 'p' });
    expectExactError(wrongType, 422, 'validation_error', { fields: expect.any(Array) });
    expect(wrongType.body.error.fields.map((f: { field: string }) => f.field)).toContain('path');
    expect(await repoCount()).toBe(before);
  });

  test('a bad path or query parameter is 422 naming the parameter', async () => {
    const res = await h.api.get('/repos/not-a-number');
    expectExactError(res, 422, 'validation_error', { fields: expect.any(Array) });
    expect(res.body.error.fields.map((f: { field: string }) => f.field)).toContain('id');

    const query = await h.api.get('/repos?page=0');
    expectExactError(query, 422, 'validation_error', { fields: expect.any(Array) });
    expect(query.body.error.fields.map((f: { field: string }) => f.field)).toContain('page');
  });

  test('authentication comes before validation: an invalid body without a token is 401', async () => {
    const before = await repoCount();
    expectExactError(await h.api.post('/repos', { bogus: true }, { token: null }), 401, 'missing_token');
    expect(await repoCount()).toBe(before);
  });

  test('the valid request the failing ones were derived from does create a repository', async () => {
    // Guards the "changes nothing" checks above: they would pass trivially if creation never worked.
    const before = await repoCount();
    const res = await h.api.post('/repos', validRepo());
    expect(res.status).toBe(201);
    expect(await repoCount()).toBe(before + 1);
  });
});

describe('protocol edges', () => {
  test('HEAD answers like GET, without a body', async () => {
    const head = await h.api.request('HEAD', '/repos');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect((await h.api.request('HEAD', '/health', { token: null })).status).toBe(200);
  });

  test('a body that is not JSON is a 400 invalid_json, whatever its content type says', async () => {
    const before = await repoCount();
    const res = await h.api.post('/repos', 'name=x&path=/srv/x', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expectError(res, 400, 'invalid_json');
    expect(await repoCount()).toBe(before);
  });

  test('ids and pages beyond what the database can hold are 422, not 500', async () => {
    expectError(await h.api.get('/repos/1e400'), 422, 'validation_error');
    expectError(await h.api.get('/repos/2147483648'), 422, 'validation_error');
    expectError(await h.api.get('/repos?page=184467440737095516'), 422, 'validation_error');
    expectError(await h.api.post('/backup-jobs', { name: 'x', repo_id: 1e300, source_paths: ['/srv'] }), 422, 'validation_error');
  });

  test('a malformed escape in the address is a 404, not a 500', async () => {
    expectError(await h.api.get('/repos/%E0%A4%A'), 404, 'not_found');
  });

  test('control characters are refused in any field, at any depth', async () => {
    const before = await repoCount();
    for (const name of ['esc\u001b[31m', 'nul\u0000', 'bell\u0007']) {
      const res = await h.api.post('/repos', { name, path: '/srv/x', password: 'pw' });
      expectError(res, 422, 'validation_error', { fields: [{ field: 'name', message: 'must not contain control characters' }] });
    }
    const deep = `{"name":"deep","path":"/srv/x","password":"pw","description":${'['.repeat(5000)}"x\\u0000"${']'.repeat(5000)}}`;
    expect((await h.api.post('/repos', deep)).status).toBeLessThan(500);
    expect(await repoCount()).toBe(before);
    // Line breaks and tabs are text.
    const ok = await h.api.post('/repos', { name: 'multi-line', path: '/srv/x', password: 'pw', description: 'line one\n\tline two\r\n' });
    expect(ok.status).toBe(201);
  });
});
