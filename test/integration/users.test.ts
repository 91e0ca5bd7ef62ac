import crypto, { randomBytes, scryptSync } from 'node:crypto';
import { ROLES } from '../../api/auth/roles';
import { generateToken } from '../../api/auth/tokens';
import type { ApiClient } from '../support/api-client';
import { expectError, expectFieldError, ISO, unique } from '../support/expectations';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';

/**
 * The user routes as an administrator sees them: the public view (never a password), listing and
 * filters, every guard (roles, escalation, self changes, the last admin, duplicates, resource
 * scopes), the password hash, and what a change does to the user's tokens.
 */
let h: Harness;
let repoA: number;
let repoB: number;
let hostA: number;

const PASSWORD = 'correct horse battery staple';
const OPERATOR = [...ROLES.operator.permissions];

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const created = async (path: string, body: Record<string, unknown>) => {
    const res = await h.api.post(path, body);
    expect(res.status).toBe(201);
    return res.body.data.id as number;
  };
  repoA = await created('/repos', { name: `repo-${unique()}`, path: `/srv/users/${unique()}`, password: 'repo-pw' });
  repoB = await created('/repos', { name: `repo-${unique()}`, path: `/srv/users/${unique()}`, password: 'repo-pw' });
  hostA = await created('/hosts', { name: `host-${unique()}`, hostname: 'users.example.internal' });
});
afterAll(async () => {
  await h?.stop();
});

const newUser = (extra: Record<string, unknown> = {}) => ({ username: `user-${unique()}`, password: PASSWORD, ...extra });

/** Creates a user through the API with `api` (the first admin by default); expects a 201. */
async function create(extra: Record<string, unknown> = {}, api: ApiClient = h.api): Promise<any> {
  const res = await api.post('/users', newUser(extra));
  expect(res.status).toBe(201);
  return res.body.data;
}

/** A token of the user `userId` with exactly `scopes` (the API only mints tokens for their caller). */
async function tokenFor(userId: number, scopes: string[]): Promise<{ id: number; secret: string }> {
  const { token, prefix, hash } = generateToken();
  const [row] = await h.sql<{ id: number }>(
    `insert into api_tokens (user_id, name, prefix, token_hash, scopes, rate_limit_per_minute) values (?, 'user test', ?, ?, ?::jsonb, 0) returning id`,
    [userId, prefix, hash, JSON.stringify(scopes)],
  );
  return { id: row?.id ?? 0, secret: token };
}

const storedHash = async (id: number) => (await h.sql<{ password_hash: string | null }>('select password_hash from users where id = ?', [id]))[0]?.password_hash;
const storedScopes = async (tokenId: number) => (await h.sql<{ scopes: string[] }>('select scopes from api_tokens where id = ?', [tokenId]))[0]?.scopes;

/** Whether `stored` is a scrypt hash of `password` (recomputed here from its stored parameters and salt). */
function hashOf(password: string, stored: string | null | undefined): boolean {
  const [scheme, N, r, p, salt, key] = (stored ?? '').split('$');
  expect(scheme).toBe('scrypt');
  const expected = Buffer.from(key ?? '', 'base64');
  const cost = { N: Number(N), r: Number(r), p: Number(p) };
  return scryptSync(password, Buffer.from(salt ?? '', 'base64'), expected.length, { ...cost, maxmem: 256 * cost.N * cost.r }).equals(expected);
}

/** What a refused request must leave alone: users, tokens and the outbox. */
async function state(): Promise<string> {
  const rows = await Promise.all(['users', 'api_tokens', 'events'].map((table) => h.sql(`select * from ${table} order by 1`)));
  return JSON.stringify(rows, (key, value) => (key === 'last_used_at' || key === 'last_used_ip' ? undefined : value));
}

/** A non-admin allowed to manage users: an operator with users.manage added. */
const userManager = () => h.createCaller({ user: { role: 'operator', permissions: [...OPERATOR, 'users.manage'] } });

describe('POST /users', () => {
  test('201 with Location and the public view: role defaults, no password, no hash', async () => {
    const res = await h.api.post('/users', newUser({ username: 'alice.dupont' }));
    expect(res.status).toBe(201);
    const user = res.body.data;
    expect(res.headers.get('location')).toBe(`/api/v1/users/${user.id}`);
    expect(user).toEqual({
      id: expect.any(Number),
      username: 'alice.dupont',
      role: 'viewer',
      first_name: null,
      last_name: null,
      email: null,
      phone: null,
      job_title: null,
      preferred_locale: 'en',
      preferred_timezone: null,
      preferred_start_page: null,
      permissions: [...ROLES.viewer.permissions].sort(),
      permission_overrides: null,
      repo_scope_mode: 'all',
      repo_ids: [],
      host_scope_mode: 'all',
      host_ids: [],
      enabled: true,
      suspended_until: null,
      suspension_reason: null,
      account_expires_at: null,
      last_login_at: null,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    const hash = await storedHash(user.id);
    expect(res.text).not.toContain(PASSWORD);
    expect(res.text).not.toContain(String(hash));
    expect((await h.api.get(`/users/${user.id}`)).body.data).toEqual(user);
  });

  test('the password is stored as a salted scrypt hash, never in clear, in no table', async () => {
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const one = await create({ password });
    const two = await create({ password });
    const [hashOne, hashTwo] = [await storedHash(one.id), await storedHash(two.id)];
    expect(hashOf(password, hashOne)).toBe(true);
    expect(hashOf('another password', hashOne)).toBe(false);
    // The same password, another salt.
    expect(hashTwo).not.toBe(hashOne);
    expect(hashOf(password, hashTwo)).toBe(true);
    for (const table of ['users', 'api_token_logs', 'api_idempotency_keys', 'events']) {
      expect({ table, leaked: JSON.stringify(await h.sql(`select * from ${table}`)).includes(password) }).toEqual({ table, leaked: false });
    }
  });

  test('every profile, access and scope field is kept as given', async () => {
    const expires = new Date(Date.now() + 30 * 86_400_000);
    expires.setMilliseconds(0);
    const user = await create({
      role: 'restore-operator', email: 'bob@example.org', first_name: 'Bob', last_name: 'Martin', phone: '+33 1 23 45 67 89',
      job_title: 'Storage engineer', preferred_locale: 'fr', preferred_timezone: 'Europe/Paris', preferred_start_page: 'repos',
      permissions: ['stats.view', 'repos.view'], repo_scope_mode: 'selected', repo_ids: [repoA], host_scope_mode: 'selected',
      host_ids: [hostA], enabled: false, account_expires_at: expires.toISOString(),
    });
    expect(user).toMatchObject({
      role: 'restore-operator', email: 'bob@example.org', first_name: 'Bob', last_name: 'Martin', phone: '+33 1 23 45 67 89',
      job_title: 'Storage engineer', preferred_locale: 'fr', preferred_timezone: 'Europe/Paris', preferred_start_page: 'repos',
      permissions: ['repos.view', 'stats.view'], permission_overrides: ['repos.view', 'stats.view'],
      repo_scope_mode: 'selected', repo_ids: [repoA], host_scope_mode: 'selected', host_ids: [hostA], enabled: false,
      account_expires_at: expires.toISOString(),
    });
  });

  test('a password under 8 characters, or none, is 422 naming password, creates nothing and is not echoed', async () => {
    const before = await state();
    const short = await h.api.post('/users', newUser({ password: 'Sh0rt!x' }));
    expectFieldError(short, 'password');
    expect(short.text).not.toContain('Sh0rt!x');
    expectFieldError(await h.api.post('/users', { username: `user-${unique()}` }), 'password');
    expectFieldError(await h.api.post('/users', newUser({ username: 'with space' })), 'username');
    expectFieldError(await h.api.post('/users', newUser({ is_admin: true })), 'is_admin');
    expect(await state()).toBe(before);
  });

  test('an unknown role is 422 invalid_role (not silently a viewer) and creates nothing', async () => {
    const before = await state();
    expectError(await h.api.post('/users', newUser({ role: 'superuser' })), 422, 'invalid_role', { field: 'role' });
    expectError(await h.api.post('/users', newUser({ role: 'Admin' })), 422, 'invalid_role');
    expect(await state()).toBe(before);
  });

  test('a taken username is 409 user_exists, in any letter case', async () => {
    const username = `Carol-${unique()}`;
    await create({ username });
    const before = await state();
    expectError(await h.api.post('/users', newUser({ username })), 409, 'user_exists', { username });
    expectError(await h.api.post('/users', newUser({ username: username.toLowerCase() })), 409, 'user_exists');
    expectError(await h.api.post('/users', newUser({ username: username.toUpperCase() })), 409, 'user_exists');
    expect(await state()).toBe(before);
  });

  test('well-typed but wrong values are 422 naming the field, and create nothing', async () => {
    const before = await state();
    const past = new Date(Date.now() - 60_000).toISOString();
    expectFieldError(await h.api.post('/users', newUser({ preferred_timezone: 'Mars/Olympus' })), 'preferred_timezone');
    expectFieldError(await h.api.post('/users', newUser({ account_expires_at: past })), 'account_expires_at');
    expectFieldError(await h.api.post('/users', newUser({ repo_ids: [repoA] })), 'repo_ids');
    expectFieldError(await h.api.post('/users', newUser({ host_scope_mode: 'all', host_ids: [hostA] })), 'host_ids');
    expectFieldError(await h.api.post('/users', newUser({ permissions: ['repos.view', 'root.everything'] })), 'permissions[1]');
    expectFieldError(await h.api.post('/users', newUser({ preferred_locale: 'de' })), 'preferred_locale');
    expect(await state()).toBe(before);
  });

  test('selected repositories and hosts must exist: 422 naming the index', async () => {
    const before = await state();
    expectFieldError(await h.api.post('/users', newUser({ repo_scope_mode: 'selected', repo_ids: [repoA, 2147483000] })), 'repo_ids[1]');
    expectFieldError(await h.api.post('/users', newUser({ host_scope_mode: 'selected', host_ids: [2147483000] })), 'host_ids[0]');
    expect(await state()).toBe(before);
  });

  test('an id beyond 32 bits is 422 naming it, not a database error', async () => {
    const user = await create();
    const before = await state();
    expectFieldError(await h.api.post('/users', newUser({ repo_scope_mode: 'selected', repo_ids: [3000000000] })), 'repo_ids[0]');
    expectFieldError(await h.api.post('/users', newUser({ host_scope_mode: 'selected', host_ids: [hostA, 3000000000] })), 'host_ids[1]');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { repo_scope_mode: 'selected', repo_ids: [3000000000] }), 'repo_ids[0]');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { host_scope_mode: 'selected', host_ids: [3000000000] }), 'host_ids[0]');
    expect(await state()).toBe(before);
  });

  test('with an Idempotency-Key, a retry replays the answer and creates no second user', async () => {
    const key = `user-${unique()}`;
    const body = newUser();
    const first = await h.api.post('/users', body, { headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(201);
    const retry = await h.api.post('/users', body, { headers: { 'Idempotency-Key': key } });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    expect(retry.body.data.id).toBe(first.body.data.id);
    expect(await h.count('users', 'username = ?', [body.username])).toBe(1);
  });
});

describe('who may grant what', () => {
  let manager: Caller;
  beforeAll(async () => {
    manager = await userManager();
  });

  test('a role above the caller\u2019s level is 403 role_escalation_forbidden; at or below it is allowed', async () => {
    const before = await state();
    expectError(await manager.api.post('/users', newUser({ role: 'admin' })), 403, 'role_escalation_forbidden', { role: 'admin' });
    expectError(await manager.api.post('/users', newUser({ role: 'restore-operator' })), 403, 'role_escalation_forbidden');
    expect(await state()).toBe(before);
    expect((await create({ role: 'operator' }, manager.api)).role).toBe('operator');
    expect((await create({ role: 'viewer' }, manager.api)).role).toBe('viewer');
  });

  test('a permission the caller does not hold cannot be granted, by override or by a role\u2019s defaults', async () => {
    const narrow = await h.createCaller({ user: { role: 'operator', permissions: ['repos.view', 'users.manage'] } });
    const before = await state();
    expectError(await manager.api.post('/users', newUser({ permissions: ['repos.view', 'settings.manage'] })), 403, 'role_escalation_forbidden', { permission: 'settings.manage' });
    expectError(await narrow.api.post('/users', newUser({ role: 'viewer' })), 403, 'role_escalation_forbidden', { permission: 'logs.view' });
    expect(await state()).toBe(before);
    // What the caller holds it may hand on.
    expect((await create({ permissions: ['repos.view', 'users.manage'] }, narrow.api)).permissions).toEqual(['repos.view', 'users.manage']);
  });

  test('a user whose role is above the caller\u2019s cannot be changed or deleted by them', async () => {
    const admin = await create({ role: 'admin' });
    const hash = await storedHash(admin.id);
    const before = await state();
    expectError(await manager.api.patch(`/users/${admin.id}`, { first_name: 'Mallory' }), 403, 'role_escalation_forbidden');
    expectError(await manager.api.patch(`/users/${admin.id}`, { password: 'taken-over-now' }), 403, 'role_escalation_forbidden');
    expectError(await manager.api.patch(`/users/${admin.id}`, { enabled: false }), 403, 'role_escalation_forbidden');
    expectError(await manager.api.delete(`/users/${admin.id}`), 403, 'role_escalation_forbidden');
    expect(await state()).toBe(before);
    expect(await storedHash(admin.id)).toBe(hash);
    // Reading is not managing.
    expect((await manager.api.get(`/users/${admin.id}`)).status).toBe(200);
  });

  test('promoting a user above the caller\u2019s level is 403 and changes nothing', async () => {
    const viewer = await create({ role: 'viewer' });
    const before = await state();
    expectError(await manager.api.patch(`/users/${viewer.id}`, { role: 'admin' }), 403, 'role_escalation_forbidden');
    expectError(await manager.api.patch(`/users/${viewer.id}`, { permissions: ['hosts.manage'] }), 403, 'role_escalation_forbidden', { permission: 'hosts.manage' });
    expect(await state()).toBe(before);
    expect((await manager.api.patch(`/users/${viewer.id}`, { role: 'operator' })).body.data.role).toBe('operator');
  });

  test('a caller limited to some repositories cannot give a user more: 403 scope_escalation_forbidden', async () => {
    const scoped = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoA] } });
    const wide = await create();
    const before = await state();
    // No repo fields means every repository: wider than the caller.
    expectError(await scoped.api.post('/users', newUser()), 403, 'scope_escalation_forbidden');
    expectError(await scoped.api.post('/users', newUser({ repo_scope_mode: 'selected', repo_ids: [repoB] })), 403, 'scope_escalation_forbidden');
    // An id the caller cannot see is refused before its existence is checked.
    expectError(await scoped.api.post('/users', newUser({ repo_scope_mode: 'selected', repo_ids: [2147483000] })), 403, 'scope_escalation_forbidden');
    expectError(await scoped.api.patch(`/users/${wide.id}`, { repo_scope_mode: 'selected', repo_ids: [repoB] }), 403, 'scope_escalation_forbidden');
    expect(await state()).toBe(before);
    const inside = await create({ repo_scope_mode: 'selected', repo_ids: [repoA] }, scoped.api);
    expect(inside).toMatchObject({ repo_scope_mode: 'selected', repo_ids: [repoA] });
    expect((await scoped.api.patch(`/users/${inside.id}`, { job_title: 'Auditor' })).body.data.job_title).toBe('Auditor');
  });

  test('a user reaching more than the caller cannot be changed or deleted by them, not even a field outside the scope', async () => {
    const scoped = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoA] } });
    const hostScoped = await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [hostA] } });
    const wide = await create();
    const hash = await storedHash(wide.id);
    const before = await state();
    expectError(await scoped.api.patch(`/users/${wide.id}`, { job_title: 'Auditor' }), 403, 'scope_escalation_forbidden');
    expectError(await scoped.api.patch(`/users/${wide.id}`, { password: 'taken-over-now' }), 403, 'scope_escalation_forbidden');
    expectError(await scoped.api.delete(`/users/${wide.id}`), 403, 'scope_escalation_forbidden');
    expectError(await hostScoped.api.patch(`/users/${wide.id}`, { enabled: false }), 403, 'scope_escalation_forbidden');
    expect(await state()).toBe(before);
    expect(await storedHash(wide.id)).toBe(hash);
  });

  test('a user holding a permission the caller lacks cannot be changed or deleted by them', async () => {
    const narrow = await h.createCaller({ user: { role: 'operator', permissions: ['repos.view', 'users.manage'] } });
    const viewer = await create({ role: 'viewer' });
    const before = await state();
    expectError(await narrow.api.patch(`/users/${viewer.id}`, { job_title: 'Auditor' }), 403, 'role_escalation_forbidden', { permission: 'logs.view' });
    expectError(await narrow.api.delete(`/users/${viewer.id}`), 403, 'role_escalation_forbidden');
    expect(await state()).toBe(before);
  });

  test('a caller who may not change the user is refused before the new password is hashed', async () => {
    const admin = await create({ role: 'admin' });
    const scrypt = jest.spyOn(crypto, 'scrypt');
    try {
      expectError(await manager.api.patch(`/users/${admin.id}`, { password: 'taken-over-now' }), 403, 'role_escalation_forbidden');
      expect(scrypt).not.toHaveBeenCalled();
      // The spy does see the hashing of an allowed change.
      expect((await h.api.patch(`/users/${admin.id}`, { password: 'a new long password' })).status).toBe(200);
      expect(scrypt).toHaveBeenCalled();
    } finally {
      scrypt.mockRestore();
    }
  });

  test.each([
    ['demoted', `role = 'operator', permissions = '${JSON.stringify([...OPERATOR, 'users.manage'])}'::jsonb`, 'role_escalation_forbidden'],
    ['disabled', 'enabled = false', 'user_disabled'],
    ['given an expiry in the past', "account_expires_at = now() - interval '1 minute'", 'user_expired'],
  ])('a caller %s while it waits for the users lock acts with what it has left: 403', async (_what, change, code) => {
    const caller = await h.createCaller();
    const target = await create({ role: 'operator' });
    const em = h.services.orm.em.fork();
    await em.begin();
    try {
      await em.execute('lock table users in share row exclusive mode');
      const pending = caller.api.patch(`/users/${target.id}`, { role: 'admin' });
      await waitFor(async () => ((await h.count('pg_locks', "relation = 'users'::regclass and not granted and database = (select oid from pg_database where datname = current_database())")) > 0 ? true : undefined), 'the request to wait for the users lock', 30_000, 20);
      await em.execute(`update users set ${change} where id = ?`, [caller.userId]);
      await em.commit();
      expectError(await pending, 403, code);
    } finally {
      if (em.isInTransaction()) await em.rollback();
    }
    expect((await h.api.get(`/users/${target.id}`)).body.data.role).toBe('operator');
  });
});

describe('GET /users', () => {
  test('every user in id order, paginated, with the total', async () => {
    for (let i = 0; i < 3; i++) await create();
    const total = await h.count('users');
    const all = await h.api.get('/users?per_page=200');
    expect(all.status).toBe(200);
    const ids = all.body.data.map((u: { id: number }) => u.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
    expect(all.body.meta).toEqual({ page: 1, per_page: 200, total, total_pages: 1 });

    const page2 = await h.api.get('/users?page=2&per_page=2');
    expect(page2.body.data.map((u: { id: number }) => u.id)).toEqual(ids.slice(2, 4));
    expect(page2.body.meta).toEqual({ page: 2, per_page: 2, total, total_pages: Math.ceil(total / 2) });
    expectFieldError(await h.api.get('/users?per_page=201'), 'per_page');
  });

  test('no password and no hash in the list', async () => {
    const user = await create();
    const list = await h.api.get('/users?per_page=200');
    expect(list.text).not.toContain(String(await storedHash(user.id)));
    expect(list.text).not.toContain('password');
    expect(list.text).not.toContain('scrypt$');
  });

  test('role and enabled filter the list; an unknown role is 422 invalid_role', async () => {
    const operator = await create({ role: 'operator' });
    const disabled = await create({ role: 'operator', enabled: false });
    const operators = await h.api.get('/users?role=operator&per_page=200');
    expect(operators.body.data.every((u: { role: string }) => u.role === 'operator')).toBe(true);
    expect(operators.body.data.map((u: { id: number }) => u.id)).toEqual(expect.arrayContaining([operator.id, disabled.id]));
    expect(operators.body.meta.total).toBe(await h.count('users', "role = 'operator'"));

    const off = await h.api.get('/users?enabled=false&role=operator&per_page=200');
    expect(off.body.data.map((u: { id: number }) => u.id)).toContain(disabled.id);
    expect(off.body.data.map((u: { id: number }) => u.id)).not.toContain(operator.id);
    expect(off.body.meta.total).toBe(await h.count('users', "role = 'operator' and not enabled"));
    expect((await h.api.get('/users?enabled=true&per_page=200')).body.data.every((u: { enabled: boolean }) => u.enabled)).toBe(true);

    expectError(await h.api.get('/users?role=admins'), 422, 'invalid_role');
    expectFieldError(await h.api.get('/users?enabled=maybe'), 'enabled');
  });

  test('needs users:read, and a user holding users.manage', async () => {
    const noScope = await h.createCaller({ token: { scopes: ['me:read', 'repos:read'] } });
    expectError(await noScope.api.get('/users'), 403, 'insufficient_scope', { required_scope: 'users:read' });
    const viewer = await h.createCaller({ user: { role: 'viewer' } });
    expectError(await viewer.api.get('/users'), 403, 'permission_revoked', { required_scope: 'users:read' });
    expectError(await viewer.api.post('/users', newUser()), 403, 'permission_revoked', { required_scope: 'users:write' });
  });
});

describe('GET /users/{id}', () => {
  test('404 not_found for an id that does not exist', async () => {
    expectError(await h.api.get('/users/2147483647'), 404, 'not_found');
    expectError(await h.api.patch('/users/2147483647', { first_name: 'x' }), 404, 'not_found');
    expectError(await h.api.delete('/users/2147483647'), 404, 'not_found');
  });
});

describe('PATCH /users/{id}', () => {
  test('changes the profile and access fields it names, and only those', async () => {
    const user = await create({ first_name: 'Dana', email: 'dana@example.org', role: 'operator' });
    const res = await h.api.patch(`/users/${user.id}`, {
      last_name: 'Scully', phone: '555-0100', job_title: 'Backup lead', preferred_locale: 'fr', preferred_timezone: 'America/New_York',
      preferred_start_page: 'backup_jobs', host_scope_mode: 'selected', host_ids: [hostA],
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      first_name: 'Dana', email: 'dana@example.org', role: 'operator', last_name: 'Scully', phone: '555-0100', job_title: 'Backup lead',
      preferred_locale: 'fr', preferred_timezone: 'America/New_York', preferred_start_page: 'backup_jobs',
      host_scope_mode: 'selected', host_ids: [hostA], repo_scope_mode: 'all',
    });
    expect(new Date(res.body.data.updated_at).getTime()).toBeGreaterThanOrEqual(new Date(user.updated_at).getTime());
    expect((await h.api.get(`/users/${user.id}`)).body.data).toEqual(res.body.data);
    // Back to every host clears the list; null clears a field.
    const back = await h.api.patch(`/users/${user.id}`, { host_scope_mode: 'all', email: null });
    expect(back.body.data).toMatchObject({ host_scope_mode: 'all', host_ids: [], email: null });
  });

  test('a new password replaces the hash; the answer carries neither', async () => {
    const user = await create();
    const oldHash = await storedHash(user.id);
    const res = await h.api.patch(`/users/${user.id}`, { password: 'a brand new password' });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('a brand new password');
    const newHash = await storedHash(user.id);
    expect(newHash).not.toBe(oldHash);
    expect(hashOf('a brand new password', newHash)).toBe(true);
    expect(res.text).not.toContain(String(newHash));
  });

  test('bad input is a clear 4xx and changes nothing', async () => {
    const user = await create({ role: 'operator' });
    const before = await state();
    expectFieldError(await h.api.patch(`/users/${user.id}`, { password: 'short' }), 'password');
    expectError(await h.api.patch(`/users/${user.id}`, {}), 422, 'validation_error');
    expectError(await h.api.patch(`/users/${user.id}`, { role: 'root' }), 422, 'invalid_role');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { username: 'renamed' }), 'username');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { suspended_until: '2001-01-01T00:00:00Z' }), 'suspended_until');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { suspension_reason: 'no suspension given' }), 'suspension_reason');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { repo_scope_mode: 'selected', repo_ids: [2147483000] }), 'repo_ids[0]');
    expectFieldError(await h.api.patch(`/users/${user.id}`, { preferred_timezone: 'Nowhere/Else' }), 'preferred_timezone');
    expect(await state()).toBe(before);
  });

  test('suspension: until a future time with a reason; lifting it clears the reason; the token stops and starts working', async () => {
    const user = await create({ role: 'operator' });
    const token = await tokenFor(user.id, ['me:read']);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const suspended = await h.api.patch(`/users/${user.id}`, { suspended_until: until, suspension_reason: 'security review' });
    expect(suspended.body.data).toMatchObject({ suspension_reason: 'security review' });
    expect(new Date(suspended.body.data.suspended_until).getTime()).toBe(new Date(until).getTime());
    expectError(await h.api.get('/me', { token: token.secret }), 403, 'user_suspended');
    const lifted = await h.api.patch(`/users/${user.id}`, { suspended_until: null });
    expect(lifted.body.data).toMatchObject({ suspended_until: null, suspension_reason: null });
    expect((await h.api.get('/me', { token: token.secret })).status).toBe(200);
  });

  test('your own role is 403 self_role_change_forbidden; the same role is no change', async () => {
    const me = await h.createCaller();
    const before = await state();
    expectError(await me.api.patch(`/users/${me.userId}`, { role: 'viewer' }), 403, 'self_role_change_forbidden');
    expectError(await me.api.patch(`/users/${me.userId}`, { role: 'operator', first_name: 'Sneaky' }), 403, 'self_role_change_forbidden');
    expect(await state()).toBe(before);
    const same = await me.api.patch(`/users/${me.userId}`, { role: 'admin', first_name: 'Me' });
    expect(same.body.data).toMatchObject({ role: 'admin', first_name: 'Me' });
  });
});

describe('what a change does to the user\u2019s tokens', () => {
  test('a demotion takes the scopes of the lost permissions from every token at once, for good', async () => {
    const user = await create({ role: 'operator' });
    const token = await tokenFor(user.id, ['me:read', 'repos:read', 'backup_jobs:read', 'backup_jobs:write']);
    const other = await tokenFor(user.id, ['backup_jobs:run', 'logs:read']);
    expect((await h.api.get('/backup-jobs', { token: token.secret })).status).toBe(200);

    expect((await h.api.patch(`/users/${user.id}`, { role: 'viewer' })).status).toBe(200);
    expectError(await h.api.get('/backup-jobs', { token: token.secret }), 403, 'insufficient_scope', { required_scope: 'backup_jobs:read' });
    expect((await h.api.get('/repos', { token: token.secret })).status).toBe(200);
    expect([...(await storedScopes(token.id) ?? [])].sort()).toEqual(['me:read', 'repos:read']);
    expect(await storedScopes(other.id)).toEqual(['logs:read']);

    // Promoting the user again does not re-arm the old tokens.
    expect((await h.api.patch(`/users/${user.id}`, { role: 'operator' })).status).toBe(200);
    expectError(await h.api.get('/backup-jobs', { token: token.secret }), 403, 'insufficient_scope');
    expect([...(await storedScopes(token.id) ?? [])].sort()).toEqual(['me:read', 'repos:read']);
  });

  test('permission overrides that drop a permission drop its scopes; kept permissions keep theirs', async () => {
    const user = await create({ role: 'operator' });
    const token = await tokenFor(user.id, ['me:read', 'repos:read', 'snapshots:read', 'stats:read', 'copy_jobs:read']);
    const res = await h.api.patch(`/users/${user.id}`, { permissions: ['stats.view', 'copy_jobs.manage'] });
    expect(res.body.data).toMatchObject({ permissions: ['copy_jobs.manage', 'stats.view'], permission_overrides: ['copy_jobs.manage', 'stats.view'] });
    expectError(await h.api.get('/repos', { token: token.secret }), 403, 'insufficient_scope');
    expect([...(await storedScopes(token.id) ?? [])].sort()).toEqual(['copy_jobs:read', 'me:read', 'stats:read']);
    expect((await h.api.get('/copy-jobs', { token: token.secret })).status).toBe(200);
    // Back to the role's defaults.
    expect((await h.api.patch(`/users/${user.id}`, { permissions: null })).body.data.permission_overrides).toBeNull();
  });

  test('a change that loses no permission leaves the tokens alone', async () => {
    const user = await create({ role: 'operator' });
    const scopes = ['me:read', 'backup_jobs:read', 'copy_jobs:write'];
    const token = await tokenFor(user.id, scopes);
    expect((await h.api.patch(`/users/${user.id}`, { first_name: 'Eve', role: 'restore-operator', password: 'rotated-password' })).status).toBe(200);
    expect(await storedScopes(token.id)).toEqual(scopes);
  });

  test('disabling the user stops the tokens; enabling them again restores them', async () => {
    const user = await create({ role: 'operator' });
    const token = await tokenFor(user.id, ['me:read']);
    expect((await h.api.patch(`/users/${user.id}`, { enabled: false })).body.data.enabled).toBe(false);
    expectError(await h.api.get('/me', { token: token.secret }), 403, 'user_disabled');
    expect((await h.api.patch(`/users/${user.id}`, { enabled: true })).body.data.enabled).toBe(true);
    expect((await h.api.get('/me', { token: token.secret })).status).toBe(200);
  });
});

describe('DELETE /users/{id}', () => {
  test('deletes the user and revokes their tokens, each live one announced as api_token.revoked', async () => {
    const user = await create({ role: 'operator' });
    const live = await tokenFor(user.id, ['me:read', 'repos:read']);
    const revoked = await tokenFor(user.id, ['me:read']);
    await h.sql(`update api_tokens set revoked_at = now(), revoked_reason = 'old' where id = ?`, [revoked.id]);
    expect((await h.api.get('/me', { token: live.secret })).status).toBe(200);

    const res = await h.api.delete(`/users/${user.id}`);
    expect(res.status).toBe(204);
    expectError(await h.api.get(`/users/${user.id}`), 404, 'not_found');
    expectError(await h.api.get('/me', { token: live.secret }), 401, 'invalid_token');
    expect(await h.count('api_tokens', 'user_id = ?', [user.id])).toBe(0);
    const events = await h.sql<{ payload: Record<string, any> }>(`select payload from events where type = 'api_token.revoked' and (payload->>'user_id')::int = ?`, [user.id]);
    expect(events.map((e) => e.payload.id)).toEqual([live.id]);
    expect(events[0]?.payload).toMatchObject({ revoked_at: expect.stringMatching(ISO), revoked_reason: expect.stringContaining(user.username) });
  });

  test('yourself is 409 self_delete_forbidden and changes nothing', async () => {
    const me = await h.createCaller();
    const before = await state();
    expectError(await me.api.delete(`/users/${me.userId}`), 409, 'self_delete_forbidden');
    expect(await state()).toBe(before);
    expect((await me.api.get('/me')).status).toBe(200);
  });

  test('a dry run names what would go and deletes nothing', async () => {
    const user = await create();
    await tokenFor(user.id, ['me:read']);
    const before = await state();
    const res = await h.api.delete(`/users/${user.id}`, { headers: { 'X-Dry-Run': '1' } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ dry_run: true, would_delete: { user: { id: user.id }, api_tokens: 1 } });
    expect(await state()).toBe(before);
  });
});

describe('the last enabled admin', () => {
  let sole: Caller;
  let others: number[];

  // Every other admin is disabled for these tests, so `sole` is the only one who can administer.
  beforeAll(async () => {
    sole = await h.createCaller();
    others = (await h.sql<{ id: number }>(`select id from users where role = 'admin' and enabled and id <> ?`, [sole.userId])).map((r) => r.id);
    await h.sql('update users set enabled = false where id in (?)', [others]);
  });
  afterAll(async () => {
    await h.sql('update users set enabled = true where id in (?)', [others]);
  });

  test('cannot disable, suspend or lose users.manage: 409 last_admin, nothing changed', async () => {
    const before = await state();
    const target = `/users/${sole.userId}`;
    expectError(await sole.api.patch(target, { enabled: false }), 409, 'last_admin');
    expectError(await sole.api.patch(target, { suspended_until: new Date(Date.now() + 60_000).toISOString() }), 409, 'last_admin');
    expectError(await sole.api.patch(target, { permissions: ['repos.view'] }), 409, 'last_admin');
    expectError(await sole.api.patch(target, { enabled: false }, { headers: { 'X-Dry-Run': '1' } }), 409, 'last_admin');
    expect(await state()).toBe(before);
    // Changes that keep them an admin go through.
    expect((await sole.api.patch(target, { job_title: 'The last admin' })).status).toBe(200);
  });

  test('an account expiry makes no lasting admin: the last one cannot be given one, nor step down for one who has one', async () => {
    const before = await state();
    const soon = new Date(Date.now() + 86_400_000).toISOString();
    expectError(await sole.api.patch(`/users/${sole.userId}`, { account_expires_at: soon }), 409, 'last_admin');
    expect(await state()).toBe(before);

    const expiring = await create({ role: 'admin' }, sole.api);
    expect((await sole.api.patch(`/users/${expiring.id}`, { account_expires_at: soon })).status).toBe(200);
    expectError(await sole.api.patch(`/users/${sole.userId}`, { enabled: false }), 409, 'last_admin');
    expectError(await sole.api.patch(`/users/${sole.userId}`, { account_expires_at: soon }), 409, 'last_admin');
    // The admin with an expiry may still be changed, or leave.
    expect((await sole.api.patch(`/users/${expiring.id}`, { job_title: 'Contractor' })).status).toBe(200);
    expect((await sole.api.delete(`/users/${expiring.id}`)).status).toBe(204);
  });

  test('disabled admins do not count, and can be deleted', async () => {
    const disabled = await create({ role: 'admin', enabled: false }, sole.api);
    expectError(await sole.api.patch(`/users/${sole.userId}`, { enabled: false }), 409, 'last_admin');
    expect((await sole.api.delete(`/users/${disabled.id}`)).status).toBe(204);
  });

  test('with a second admin the first may step down, and the second may then not', async () => {
    const second = await create({ role: 'admin' }, sole.api);
    const secondApi = sole.api.withToken((await tokenFor(second.id, ['users:read', 'users:write'])).secret);
    expect((await sole.api.patch(`/users/${sole.userId}`, { enabled: false })).status).toBe(200);
    expectError(await sole.api.get('/users'), 403, 'user_disabled');
    expectError(await secondApi.patch(`/users/${second.id}`, { enabled: false }), 409, 'last_admin');
    expect((await secondApi.patch(`/users/${sole.userId}`, { enabled: true })).status).toBe(200);
    // Back to one admin for the next tests.
    expect((await sole.api.delete(`/users/${second.id}`)).status).toBe(204);
  });

  test.each([
    ['deleting', 'DELETE', undefined, 204, [401, 409]],
    ['demoting', 'PATCH', { role: 'operator' }, 200, [403, 409]],
  ] as const)('two admins %s each other at once leave one admin', async (_what, method, body, won, lost) => {
    const a = await create({ role: 'admin' }, sole.api);
    const b = await create({ role: 'admin' }, sole.api);
    const [tokenA, tokenB] = [await tokenFor(a.id, ['users:write']), await tokenFor(b.id, ['users:write'])];
    // Only a and b are admins now.
    await h.sql('update users set enabled = false where id = ?', [sole.userId]);
    try {
      const [byA, byB] = await Promise.all([
        sole.api.withToken(tokenA.secret).request(method, `/users/${b.id}`, { body }),
        sole.api.withToken(tokenB.secret).request(method, `/users/${a.id}`, { body }),
      ]);
      const [winner, loser] = [byA, byB].sort((x, y) => x.status - y.status);
      expect(winner?.status).toBe(won);
      // The loser was changed before it authenticated (its token gone or without users:write), or found itself the last admin.
      expect(lost).toContain(loser?.status);
      expect(await h.count('users', "role = 'admin' and enabled and id in (?, ?)", [a.id, b.id])).toBe(1);
    } finally {
      await h.sql('update users set enabled = true where id = ?', [sole.userId]);
      await h.sql("update users set enabled = false where role = 'admin' and id in (?, ?)", [a.id, b.id]);
    }
  });
});
