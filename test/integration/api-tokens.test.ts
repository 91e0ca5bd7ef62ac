import { randomBytes } from 'node:crypto';
import { hashToken } from '../../api/auth/tokens';
import type { ApiClient, ApiResponse } from '../support/api-client';
import { startHarness, type Harness } from '../support/harness';
import { expectError, expectFieldError, ISO, unique } from '../support/expectations';

/**
 * The API token routes as their user sees them: minting (the secret once), reading without the
 * secret, defaults from the settings, validation, the no-escalation rule, updates, revocation,
 * deletion, the outbox events and dry runs.
 */
let h: Harness;

const DAY_MS = 86_400_000;
const SECRET = /^rui_[0-9a-f]{8}_[0-9a-f]{40}$/;
const TOKEN_MANAGER = ['api_tokens:write', 'api_tokens:read', 'me:read'];

/** Two repositories, A and B, for the resource-scope cases. */
let repoA: number;
let repoB: number;

const validRepo = () => ({ name: `repo-${unique()}`, path: `/srv/backups/${randomBytes(4).toString('hex')}`, password: 'hunter2-tokens' });

beforeAll(async () => {
  h = await startHarness({ worker: false });
  for (const which of ['A', 'B']) {
    const res = await h.api.post('/repos', validRepo());
    expect(res.status).toBe(201);
    if (which === 'A') repoA = res.body.data.id;
    else repoB = res.body.data.id;
  }
});
afterAll(async () => {
  await h?.stop();
});

const tokenRows = () => h.count('api_tokens');

interface EventRow {
  id: string | number;
  type: string;
  payload: Record<string, any>;
}

async function eventsOf(type: string, tokenId: number): Promise<EventRow[]> {
  return h.sql<EventRow>(
    `select id, type, payload from events where type = ? and payload->>'id' = ? order by id`,
    [type, String(tokenId)],
  );
}

const eventRows = () => h.count('events');

const newToken = (extra: Record<string, unknown> = {}) => ({ name: `token-${unique()}`, scopes: ['me:read'], ...extra });

/** Mints a token through the API with `api` (the admin by default); expects a 201. */
async function mint(extra: Record<string, unknown> = {}, api: ApiClient = h.api): Promise<{ id: number; secret: string; body: any }> {
  const res = await api.post('/api-tokens', newToken(extra));
  expect(res.status).toBe(201);
  return { id: res.body.data.id, secret: res.body.data.secret, body: res.body.data };
}

function expectEscalation(res: ApiResponse): void {
  expectError(res, 403, 'scope_escalation_forbidden');
}

const sorted = (values: string[]) => [...values].sort();
const future = (ms: number) => new Date(Date.now() + ms).toISOString();

describe('POST /api-tokens', () => {
  test('201 with Location, the secret once, and the public view of the token', async () => {
    const me = await h.api.get('/me');
    const res = await h.api.post('/api-tokens', { name: 'ci deploy', scopes: ['me:read', 'repos:read'] });
    expect(res.status).toBe(201);
    const token = res.body.data;
    expect(res.headers.get('location')).toBe(`/api/v1/api-tokens/${token.id}`);
    expect(token.secret).toMatch(SECRET);
    expect(token).toMatchObject({
      name: 'ci deploy',
      user_id: me.body.data.user.id,
      read_only: false,
      allowed_ips: [],
      allowed_origins: [],
      revoked_at: null,
      revoked_reason: null,
      last_used_at: null,
      repo_scope_mode: 'all',
      repo_ids: [],
      host_scope_mode: 'all',
      host_ids: [],
    });
    expect(sorted(token.scopes)).toEqual(['me:read', 'repos:read']);
    expect(token.created_at).toMatch(ISO);
    expect(token.display_token).toBe(`rui_${token.secret.slice(4, 12)}_********`);
    // The stored hash is never part of an answer, not even the creation one.
    expect(res.text).not.toContain(hashToken(token.secret));
    expect(token).not.toHaveProperty('token_hash');
  });

  test('the secret is a bearer token holding exactly the granted scopes', async () => {
    const { id, secret } = await mint({ scopes: ['me:read', 'repos:read', 'hosts:read'] });
    const me = await h.api.get('/me', { token: secret });
    expect(me.status).toBe(200);
    expect(me.body.data.token.id).toBe(id);
    expect(sorted(me.body.data.token.scopes)).toEqual(['hosts:read', 'me:read', 'repos:read']);
    // It works for a granted scope and is refused for one it was not given.
    expect((await h.api.get('/repos', { token: secret })).status).toBe(200);
    expectError(await h.api.get('/settings', { token: secret }), 403, 'insufficient_scope', { required_scope: 'settings:read' });
  });

  test('the secret is never shown again: GET and the list carry neither the secret nor its hash', async () => {
    const { id, secret } = await mint({ scopes: ['me:read'] });
    const hash = hashToken(secret);

    const one = await h.api.get(`/api-tokens/${id}`);
    expect(one.status).toBe(200);
    expect(one.body.data.id).toBe(id);
    expect(one.body.data).not.toHaveProperty('secret');
    expect(one.body.data).not.toHaveProperty('token_hash');
    expect(one.text).not.toContain(secret);
    expect(one.text).not.toContain(secret.slice(13));
    expect(one.text).not.toContain(hash);
    expect(one.body.data.display_token).toBe(`rui_${secret.slice(4, 12)}_********`);

    const list = await h.api.get('/api-tokens?per_page=200');
    expect(list.status).toBe(200);
    const row = list.body.data.find((t: { id: number }) => t.id === id);
    expect(row).toBeDefined();
    expect(row).not.toHaveProperty('secret');
    expect(row.display_token).toBe(`rui_${secret.slice(4, 12)}_********`);
    expect(list.text).not.toContain(secret);
    expect(list.text).not.toContain(hash);
  });

  test('using the token records last_used_at and last_used_ip', async () => {
    const { id, secret } = await mint({ scopes: ['me:read'] });
    expect((await h.api.get(`/api-tokens/${id}`)).body.data).toMatchObject({ last_used_at: null, last_used_ip: null });
    expect((await h.api.get('/me', { token: secret })).status).toBe(200);
    const used = (await h.api.get(`/api-tokens/${id}`)).body.data;
    expect(used.last_used_at).toMatch(ISO);
    expect(used.last_used_ip).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
  });

  test('with an Idempotency-Key, a retry creates no second token and the secret is not stored in plain text', async () => {
    const key = `create-${unique()}`;
    const body = newToken({ scopes: ['me:read'] });
    const before = await tokenRows();
    const first = await h.api.post('/api-tokens', body, { headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(201);
    const secret: string = first.body.data.secret;
    expect(secret).toMatch(SECRET);
    expect(await tokenRows()).toBe(before + 1);

    const retry = await h.api.post('/api-tokens', body, { headers: { 'Idempotency-Key': key } });
    expectError(retry, 409, 'secret_not_replayable');
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    expect(retry.body.error.token_id).toBe(first.body.data.id);
    expect(await tokenRows()).toBe(before + 1);

    // "Only its sha256 and display prefix are stored": no table may keep the secret itself.
    const stored = await h.sql<{ body: string | null }>(
      'select response_body as body from api_idempotency_keys where idempotency_key = ?',
      [key],
    );
    expect(stored.length).toBeGreaterThan(0);
    for (const row of stored) expect(row.body ?? '').not.toContain(secret.slice(13));
  });

  test('a body that fails the schema is 422 naming the field, and creates nothing', async () => {
    const before = await tokenRows();
    expectFieldError(await h.api.post('/api-tokens', { scopes: ['me:read'] }), 'name');
    expectFieldError(await h.api.post('/api-tokens', { name: 'x', scopes: [] }), 'scopes');
    expectFieldError(await h.api.post('/api-tokens', { name: 'x', scopes: ['me:read'], colour: 'blue' }), 'colour');
    expectError(await h.api.post('/api-tokens', { name: 'x', scopes: ['everything:root'] }), 422, 'validation_error');
    expect(await tokenRows()).toBe(before);
  });
});

describe('a token for another user (user_id)', () => {
  test('is made by a caller with users:write for a user they may manage, and works within that user\u2019s permissions', async () => {
    const viewer = (await h.api.post('/users', { username: `svc-${unique()}`, password: 'long enough password', role: 'viewer' })).body.data;
    const before = await tokenRows();
    const created = await h.api.post('/api-tokens', { user_id: viewer.id, name: 'ci', scopes: ['repos:read', 'repos:write', 'me:read', 'api_tokens:read'] });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ user_id: viewer.id, created_by_token_id: expect.any(Number) });
    const client = h.api.withToken(created.body.data.secret);
    expect((await client.get('/me')).body.data.user).toMatchObject({ id: viewer.id, role: 'viewer' });
    expect((await client.get('/repos')).status).toBe(200);
    // repos:write is in the token, but a viewer does not hold repos.manage.
    expect((await client.post('/repos', validRepo())).status).toBe(403);
    // The user sees and manages it; the maker does not list it among their own.
    expect(((await client.get('/api-tokens')).body.data as { id: number }[]).map((t) => t.id)).toEqual([created.body.data.id]);
    expect(((await h.api.get('/api-tokens?per_page=200')).body.data as { id: number }[]).some((t) => t.id === created.body.data.id)).toBe(false);
    expect(await tokenRows()).toBe(before + 1);
  });

  test('without users:write, for a user above the caller, or for an unknown user, is refused and makes nothing', async () => {
    const viewer = (await h.api.post('/users', { username: `svc-${unique()}`, password: 'long enough password', role: 'viewer' })).body.data;
    const tokensOnly = await h.createCaller({ token: { scopes: [...TOKEN_MANAGER, 'repos:read'] } });
    const operator = await h.createCaller({ user: { role: 'operator', permissions: ['repos.view', 'backup_jobs.manage', 'users.manage'] } });
    const admin = (await h.api.post('/users', { username: `adm-${unique()}`, password: 'long enough password', role: 'admin' })).body.data;
    const before = await tokenRows();
    expectError(await tokensOnly.api.post('/api-tokens', { user_id: viewer.id, name: 'x', scopes: ['repos:read'] }), 403, 'insufficient_scope', { required_scope: 'users:write' });
    expectError(await operator.api.post('/api-tokens', { user_id: admin.id, name: 'x', scopes: ['repos:read'] }), 403, 'role_escalation_forbidden');
    expectFieldError(await h.api.post('/api-tokens', { user_id: 2_000_000_000, name: 'x', scopes: ['repos:read'] }), 'user_id');
    expect(await tokenRows()).toBe(before);
  });
});

describe('created_by_token_id', () => {
  test('names the token that created a token, so a leaked token\u2019s offspring can be found', async () => {
    const parent = await h.createCaller();
    const child = await mint({ scopes: ['me:read', 'api_tokens:write', 'api_tokens:read'] }, parent.api);
    expect(child.body.created_by_token_id).toBe(parent.tokenId);
    const grandchild = await mint({ scopes: ['me:read'] }, parent.api.withToken(child.secret));
    expect(grandchild.body.created_by_token_id).toBe(child.id);
    expect((await parent.api.get(`/api-tokens/${grandchild.id}`)).body.data.created_by_token_id).toBe(child.id);
    // Deleting the parent keeps the child, which no longer names it.
    expect((await parent.api.withToken(child.secret).delete(`/api-tokens/${child.id}`)).status).toBe(204);
    expect((await parent.api.get(`/api-tokens/${grandchild.id}`)).body.data.created_by_token_id).toBeNull();
  });
});

describe('GET /api-tokens', () => {
  test("lists the caller's own tokens only, newest first, paginated", async () => {
    const caller = await h.createCaller();
    const first = await mint({}, caller.api);
    const second = await mint({}, caller.api);
    const third = await mint({}, caller.api);

    const all = await caller.api.get('/api-tokens');
    expect(all.status).toBe(200);
    expect(all.body.data.map((t: { id: number }) => t.id)).toEqual([third.id, second.id, first.id, caller.tokenId]);
    expect(all.body.data.every((t: { user_id: number }) => t.user_id === caller.userId)).toBe(true);
    expect(all.body.meta).toMatchObject({ page: 1, total: 4 });

    const page1 = await caller.api.get('/api-tokens?page=1&per_page=3');
    expect(page1.body.data.map((t: { id: number }) => t.id)).toEqual([third.id, second.id, first.id]);
    expect(page1.body.meta).toEqual({ page: 1, per_page: 3, total: 4, total_pages: 2 });
    const page2 = await caller.api.get('/api-tokens?page=2&per_page=3');
    expect(page2.body.data.map((t: { id: number }) => t.id)).toEqual([caller.tokenId]);
    expect(page2.body.meta).toEqual({ page: 2, per_page: 3, total: 4, total_pages: 2 });

    // The admin does not see them, and they do not see the admin's.
    const adminList = await h.api.get('/api-tokens?per_page=200');
    const adminIds = adminList.body.data.map((t: { id: number }) => t.id);
    for (const id of [first.id, second.id, third.id, caller.tokenId]) expect(adminIds).not.toContain(id);
    expect(adminIds.length).toBeGreaterThan(0);
  });

  test('revoked tokens stay in the list', async () => {
    const caller = await h.createCaller();
    const token = await mint({}, caller.api);
    expect((await caller.api.post(`/api-tokens/${token.id}/revoke`, { reason: 'rotated' })).status).toBe(204);
    const list = await caller.api.get('/api-tokens');
    const row = list.body.data.find((t: { id: number }) => t.id === token.id);
    expect(row).toMatchObject({ revoked_reason: 'rotated', revoked_at: expect.stringMatching(ISO) });
  });

  test("another user's token is 404 not_found on get, patch, revoke and delete, and stays untouched", async () => {
    const other = await h.createCaller({ token: { name: 'not yours' } });
    expectError(await h.api.get(`/api-tokens/${other.tokenId}`), 404, 'not_found');
    expectError(await h.api.patch(`/api-tokens/${other.tokenId}`, { name: 'stolen' }), 404, 'not_found');
    expectError(await h.api.post(`/api-tokens/${other.tokenId}/revoke`, { reason: 'mine now' }), 404, 'not_found');
    expectError(await h.api.delete(`/api-tokens/${other.tokenId}`), 404, 'not_found');

    const own = await other.api.get(`/api-tokens/${other.tokenId}`);
    expect(own.status).toBe(200);
    expect(own.body.data).toMatchObject({ name: 'not yours', revoked_at: null });
    expect((await other.api.get('/me')).status).toBe(200);
  });

  test('an id that does not exist is 404 not_found', async () => {
    expectError(await h.api.get('/api-tokens/2147483647'), 404, 'not_found');
    expectError(await h.api.delete('/api-tokens/2147483647'), 404, 'not_found');
  });
});

describe('defaults from the settings', () => {
  test('expires_at omitted: now + api_default_token_lifetime_days (90)', async () => {
    const before = Date.now();
    const { body } = await mint();
    const after = Date.now();
    expect(body.expires_at).toMatch(ISO);
    const expires = new Date(body.expires_at).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 90 * DAY_MS - 1000);
    expect(expires).toBeLessThanOrEqual(after + 90 * DAY_MS + 1000);
  });

  test('expires_at omitted with api_default_token_lifetime_days 0: the token never expires', async () => {
    const set = await h.api.put('/settings/api_default_token_lifetime_days', { value: 0 });
    expect(set.status).toBe(200);
    try {
      const { body } = await mint();
      expect(body.expires_at).toBeNull();
    } finally {
      expect((await h.api.put('/settings/api_default_token_lifetime_days', { value: 90 })).status).toBe(200);
    }
    // And back at 90, the default applies again.
    expect((await mint()).body.expires_at).not.toBeNull();
  });

  test('expires_at null never expires; an explicit future date is kept', async () => {
    expect((await mint({ expires_at: null })).body.expires_at).toBeNull();
    const at = new Date(Date.now() + 7 * DAY_MS);
    at.setMilliseconds(0);
    const { body } = await mint({ expires_at: at.toISOString() });
    expect(new Date(body.expires_at).getTime()).toBe(at.getTime());
  });

  test('rate_limit_per_minute omitted: api_default_rate_limit_per_minute (120), or what the setting says', async () => {
    expect((await mint()).body.rate_limit_per_minute).toBe(120);
    expect((await mint({ rate_limit_per_minute: 7 })).body.rate_limit_per_minute).toBe(7);
    expect((await mint({ rate_limit_per_minute: 0 })).body.rate_limit_per_minute).toBe(0);
    expect((await h.api.put('/settings/api_default_rate_limit_per_minute', { value: 33 })).status).toBe(200);
    try {
      expect((await mint()).body.rate_limit_per_minute).toBe(33);
    } finally {
      expect((await h.api.put('/settings/api_default_rate_limit_per_minute', { value: 120 })).status).toBe(200);
    }
  });
});

describe('validation', () => {
  test('expires_at in the past is 422 naming expires_at', async () => {
    const before = await tokenRows();
    expectFieldError(await h.api.post('/api-tokens', newToken({ expires_at: new Date(Date.now() - 60_000).toISOString() })), 'expires_at');
    expectFieldError(await h.api.post('/api-tokens', newToken({ expires_at: '2001-01-01T00:00:00Z' })), 'expires_at');
    expect(await tokenRows()).toBe(before);
  });

  test('read_only drops the write scopes', async () => {
    const { body, secret } = await mint({ scopes: ['me:read', 'repos:read', 'repos:write', 'backup_jobs:run'], read_only: true });
    expect(body.read_only).toBe(true);
    expect(sorted(body.scopes)).toEqual(['me:read', 'repos:read']);
    const me = await h.api.get('/me', { token: secret });
    expect(sorted(me.body.data.token.scopes)).toEqual(['me:read', 'repos:read']);
    const before = (await h.api.get('/repos')).body.meta.total;
    expectError(await h.api.post('/repos', validRepo(), { token: secret }), 403, 'insufficient_scope');
    expect((await h.api.get('/repos')).body.meta.total).toBe(before);
  });

  test('read_only with only write scopes is 422 naming scopes', async () => {
    const before = await tokenRows();
    expectFieldError(await h.api.post('/api-tokens', newToken({ scopes: ['repos:write', 'hosts:write'], read_only: true })), 'scopes');
    expect(await tokenRows()).toBe(before);
  });

  test('an allowed_ips entry that is not an address or CIDR range is 422 naming its index', async () => {
    const before = await tokenRows();
    expectFieldError(await h.api.post('/api-tokens', newToken({ allowed_ips: ['10.0.0.0/33'] })), 'allowed_ips[0]');
    expectFieldError(await h.api.post('/api-tokens', newToken({ allowed_ips: ['127.0.0.1', 'nonsense'] })), 'allowed_ips[1]');
    expectFieldError(await h.api.post('/api-tokens', newToken({ allowed_ips: ['192.0.2.1', '10.0.0.1', '300.1.2.3'] })), 'allowed_ips[2]');
    expectFieldError(await h.api.post('/api-tokens', newToken({ allowed_ips: ['2001:db8::/129'] })), 'allowed_ips[0]');
    expect(await tokenRows()).toBe(before);
  });

  test('IPv4 and IPv6 addresses and CIDR ranges are accepted and kept as given', async () => {
    const ips = ['192.0.2.7', '10.0.0.0/8', '2001:db8::1', '2001:db8::/32', '127.0.0.0/8'];
    const { id, body } = await mint({ allowed_ips: ips });
    expect(body.allowed_ips).toEqual(ips);
    expect((await h.api.get(`/api-tokens/${id}`)).body.data.allowed_ips).toEqual(ips);
  });

  test('repo_ids naming a repository that does not exist is 422 naming the index', async () => {
    const before = await tokenRows();
    expectFieldError(await h.api.post('/api-tokens', newToken({ repo_scope_mode: 'selected', repo_ids: [2147483000] })), 'repo_ids[0]');
    expectFieldError(await h.api.post('/api-tokens', newToken({ repo_scope_mode: 'selected', repo_ids: [repoA, 2147483000] })), 'repo_ids[1]');
    expectFieldError(await h.api.post('/api-tokens', newToken({ host_scope_mode: 'selected', host_ids: [2147483000] })), 'host_ids[0]');
    // Beyond 32 bits: refused by the contract, not a database error.
    expectFieldError(await h.api.post('/api-tokens', newToken({ repo_scope_mode: 'selected', repo_ids: [3000000000] })), 'repo_ids[0]');
    expectFieldError(await h.api.post('/api-tokens', newToken({ host_scope_mode: 'selected', host_ids: [3000000000] })), 'host_ids[0]');
    expect(await tokenRows()).toBe(before);
  });

  test('repo_ids with repo_scope_mode all (or no mode) is 422 naming repo_ids', async () => {
    const before = await tokenRows();
    expectFieldError(await h.api.post('/api-tokens', newToken({ repo_scope_mode: 'all', repo_ids: [repoA] })), 'repo_ids');
    expectFieldError(await h.api.post('/api-tokens', newToken({ repo_ids: [repoA] })), 'repo_ids');
    expect(await tokenRows()).toBe(before);
  });

  test('a token limited to repository A sees only A', async () => {
    const { body, secret } = await mint({ scopes: ['repos:read'], repo_scope_mode: 'selected', repo_ids: [repoA] });
    expect(body).toMatchObject({ repo_scope_mode: 'selected', repo_ids: [repoA] });
    const repos = await h.api.get('/repos', { token: secret });
    expect(repos.status).toBe(200);
    expect(repos.body.data.map((r: { id: number }) => r.id)).toEqual([repoA]);
  });
});

describe('no escalation: a token never mints or widens beyond the calling token', () => {
  test('a token holding only the token scopes cannot mint repos:read; its own scopes are fine', async () => {
    const caller = await h.createCaller({ token: { scopes: TOKEN_MANAGER } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['me:read', 'repos:read'] })));
    expect(await tokenRows()).toBe(before);
    const ok = await mint({ scopes: ['me:read', 'api_tokens:read'] }, caller.api);
    expect(sorted(ok.body.scopes)).toEqual(['api_tokens:read', 'me:read']);
    expect(await tokenRows()).toBe(before + 1);
  });

  test("a viewer's all-scope token cannot mint repos:write (the user lacks repos.manage), but can mint repos:read", async () => {
    const caller = await h.createCaller({ user: { role: 'viewer' } });
    const me = await caller.api.get('/me');
    expect(me.body.data.token.scopes).not.toContain('repos:write');
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:write'] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read', 'settings:write'] })));
    expect(await tokenRows()).toBe(before);
    await mint({ scopes: ['repos:read'] }, caller.api);
    expect(await tokenRows()).toBe(before + 1);
  });

  test('a token limited to [A] cannot mint one for all repositories or for [A, B], but can for [A]', async () => {
    const caller = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [repoA] } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read'], repo_scope_mode: 'all' })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read'] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read'], repo_scope_mode: 'selected', repo_ids: [repoA, repoB] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read'], repo_scope_mode: 'selected', repo_ids: [repoB] })));
    expect(await tokenRows()).toBe(before);

    const ok = await mint({ scopes: ['repos:read'], repo_scope_mode: 'selected', repo_ids: [repoA] }, caller.api);
    expect(ok.body).toMatchObject({ repo_scope_mode: 'selected', repo_ids: [repoA] });
    expect((await h.api.get('/repos', { token: ok.secret })).body.data.map((r: { id: number }) => r.id)).toEqual([repoA]);
  });

  test('a token whose user is limited to [A] may mint one for all repositories: it still sees only A', async () => {
    const caller = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoA] } });
    const minted = await mint({ scopes: ['repos:read'], repo_scope_mode: 'all' }, caller.api);
    expect(minted.body.repo_scope_mode).toBe('all');
    const repos = await h.api.get('/repos', { token: minted.secret });
    expect(repos.status).toBe(200);
    expect(repos.body.data.map((r: { id: number }) => r.id)).toEqual([repoA]);
    expectError(await h.api.get(`/repos/${repoB}`, { token: minted.secret }), 403, 'repo_not_in_scope');
  });

  test('a token whose user is limited to [A] cannot name repository B, which it cannot see', async () => {
    // repo_ids "must be visible to the caller" (ApiTokenCreate.repo_ids).
    const caller = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoA] } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read'], repo_scope_mode: 'selected', repo_ids: [repoA, repoB] })));
    expect(await tokenRows()).toBe(before);
  });

  test('a token bound to 127.0.0.0/8 cannot mint one without allowed_ips or outside the range; 127.0.0.1 is fine', async () => {
    const caller = await h.createCaller({ token: { allowedIps: ['127.0.0.0/8'] } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken()));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ allowed_ips: [] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ allowed_ips: ['10.0.0.0/8'] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ allowed_ips: ['127.0.0.1', '10.0.0.1'] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ allowed_ips: ['0.0.0.0/0'] })));
    expect(await tokenRows()).toBe(before);

    const ok = await mint({ allowed_ips: ['127.0.0.1'] }, caller.api);
    expect(ok.body.allowed_ips).toEqual(['127.0.0.1']);
    expect((await h.api.get('/me', { token: ok.secret })).status).toBe(200);
  });

  test('a token with allowed_origins cannot mint one without them or with others', async () => {
    const caller = await h.createCaller({ token: { allowedOrigins: ['https://ci.example.org'] } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken()));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ allowed_origins: ['https://evil.example.com'] })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ allowed_origins: ['*'] })));
    expect(await tokenRows()).toBe(before);
    const ok = await mint({ allowed_origins: ['https://ci.example.org'] }, caller.api);
    expect(ok.body.allowed_origins).toEqual(['https://ci.example.org']);
  });

  test('an expiring token cannot mint one that never expires or expires later; the default stays within it', async () => {
    const callerExpiry = new Date(Date.now() + DAY_MS);
    const caller = await h.createCaller({ token: { expiresAt: callerExpiry } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken({ expires_at: null })));
    expectEscalation(await caller.api.post('/api-tokens', newToken({ expires_at: future(2 * DAY_MS) })));
    expect(await tokenRows()).toBe(before);

    const sooner = await mint({ expires_at: future(3_600_000) }, caller.api);
    expect(new Date(sooner.body.expires_at).getTime()).toBeLessThanOrEqual(callerExpiry.getTime());
    const byDefault = await mint({}, caller.api);
    expect(byDefault.body.expires_at).not.toBeNull();
    expect(new Date(byDefault.body.expires_at).getTime()).toBeLessThanOrEqual(callerExpiry.getTime());
  });

  test('an escalating create with X-Dry-Run is still 403', async () => {
    const caller = await h.createCaller({ token: { scopes: TOKEN_MANAGER } });
    const before = await tokenRows();
    expectEscalation(await caller.api.post('/api-tokens', newToken({ scopes: ['repos:read'] }), { headers: { 'x-dry-run': '1' } }));
    expect(await tokenRows()).toBe(before);
  });

  test('PATCH cannot widen a token beyond the calling token, but renaming a wider token works', async () => {
    // A wide token (all scopes, never expires, any address) and a narrow one of the same user.
    const wide = await h.createCaller();
    const narrow = await mint({
      scopes: TOKEN_MANAGER,
      expires_at: future(DAY_MS),
      allowed_ips: ['127.0.0.0/8'],
      allowed_origins: [],
      repo_scope_mode: 'selected',
      repo_ids: [repoA],
    }, wide.api);
    const narrowApi = wide.api.withToken(narrow.secret);
    const target = await mint({ scopes: ['me:read'], expires_at: future(3_600_000), allowed_ips: ['127.0.0.1'], repo_scope_mode: 'selected', repo_ids: [repoA] }, wide.api);
    const original = (await wide.api.get(`/api-tokens/${target.id}`)).body.data;

    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { scopes: ['me:read', 'repos:read'] }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { expires_at: null }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { expires_at: future(2 * DAY_MS) }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { allowed_ips: ['10.0.0.0/8'] }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { allowed_ips: [] }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { repo_scope_mode: 'all' }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${target.id}`, { repo_ids: [repoA, repoB] }));
    expect((await wide.api.get(`/api-tokens/${target.id}`)).body.data).toEqual(original);

    // A change within the narrow token's bounds is allowed.
    const narrowed = await narrowApi.patch(`/api-tokens/${target.id}`, { expires_at: future(1_800_000) });
    expect(narrowed.status).toBe(200);

    // The wide token itself is out of the narrow token's hands: no rename, no revoke, no delete.
    const wideBefore = (await wide.api.get(`/api-tokens/${wide.tokenId}`)).body.data;
    expectEscalation(await narrowApi.patch(`/api-tokens/${wide.tokenId}`, { name: 'renamed by the narrow one' }));
    expectEscalation(await narrowApi.patch(`/api-tokens/${wide.tokenId}`, { rate_limit_per_minute: 1 }));
    expectEscalation(await narrowApi.post(`/api-tokens/${wide.tokenId}/revoke`, { reason: 'a leaked CI token' }));
    expectEscalation(await narrowApi.delete(`/api-tokens/${wide.tokenId}`));
    const wideAfter = (await wide.api.get(`/api-tokens/${wide.tokenId}`)).body.data;
    expect({ ...wideAfter, last_used_at: null, last_used_ip: null }).toEqual({ ...wideBefore, last_used_at: null, last_used_ip: null });
    expectEscalation(await narrowApi.patch(`/api-tokens/${wide.tokenId}`, { scopes: ['me:read', 'repos:read'] }));
  });

  test('a rate-limited token cannot mint, or make itself, a looser limit', async () => {
    const limited = await h.createCaller({ token: { scopes: ['api_tokens:read', 'api_tokens:write', 'me:read'], rateLimitPerMinute: 50 } });
    const before = await tokenRows();
    expectEscalation(await limited.api.post('/api-tokens', newToken({ scopes: ['me:read'], rate_limit_per_minute: 0 })));
    expectEscalation(await limited.api.post('/api-tokens', newToken({ scopes: ['me:read'], rate_limit_per_minute: 51 })));
    expectEscalation(await limited.api.patch(`/api-tokens/${limited.tokenId}`, { rate_limit_per_minute: 0 }));
    expect(await tokenRows()).toBe(before);
    const inherited = await limited.api.post('/api-tokens', newToken({ scopes: ['me:read'] }));
    expect(inherited.status).toBe(201);
    expect(inherited.body.data.rate_limit_per_minute).toBe(50);
    const tighter = await limited.api.post('/api-tokens', newToken({ scopes: ['me:read'], rate_limit_per_minute: 20 }));
    expect(tighter.body.data.rate_limit_per_minute).toBe(20);
    expect((await limited.api.patch(`/api-tokens/${limited.tokenId}`, { rate_limit_per_minute: 30 })).status).toBe(200);
  });

  test('an expiry no database can store (a leap second, year 0) is 422, not 500', async () => {
    for (const expires of ['2027-12-31T23:59:60Z', '0000-01-01T00:00:00Z']) {
      expectFieldError(await h.api.post('/api-tokens', newToken({ scopes: ['me:read'], expires_at: expires })), 'expires_at');
      expectFieldError(await h.api.post('/api-tokens', newToken({ scopes: ['me:read'], expires_at: expires }), { headers: { 'X-Dry-Run': '1' } }), 'expires_at');
    }
  });
});

describe('PATCH /api-tokens/{id}', () => {
  test('changes each field', async () => {
    const { id } = await mint({ scopes: ['me:read', 'repos:read', 'repos:write'] });
    const patch = async (body: Record<string, unknown>) => {
      const res = await h.api.patch(`/api-tokens/${id}`, body);
      expect(res.status).toBe(200);
      const again = await h.api.get(`/api-tokens/${id}`);
      expect(again.body.data).toEqual(res.body.data);
      return res.body.data;
    };

    expect((await patch({ name: 'renamed' })).name).toBe('renamed');
    expect(sorted((await patch({ scopes: ['me:read', 'hosts:read', 'repos:write'] })).scopes)).toEqual(['hosts:read', 'me:read', 'repos:write']);
    const readOnly = await patch({ read_only: true });
    expect(readOnly.read_only).toBe(true);
    expect(sorted(readOnly.scopes)).toEqual(['hosts:read', 'me:read']);
    expect((await patch({ read_only: false })).read_only).toBe(false);

    const at = new Date(Date.now() + 3 * DAY_MS);
    at.setMilliseconds(0);
    expect(new Date((await patch({ expires_at: at.toISOString() })).expires_at).getTime()).toBe(at.getTime());
    expect((await patch({ expires_at: null })).expires_at).toBeNull();

    expect((await patch({ allowed_ips: ['192.0.2.0/24', '2001:db8::/48'] })).allowed_ips).toEqual(['192.0.2.0/24', '2001:db8::/48']);
    expect((await patch({ allowed_ips: [] })).allowed_ips).toEqual([]);
    expect((await patch({ allowed_origins: ['https://ci.example.org', 'http://localhost:8080'] })).allowed_origins).toEqual(['https://ci.example.org', 'http://localhost:8080']);
    expect((await patch({ rate_limit_per_minute: 5 })).rate_limit_per_minute).toBe(5);

    expect(await patch({ repo_scope_mode: 'selected', repo_ids: [repoA, repoB] })).toMatchObject({ repo_scope_mode: 'selected', repo_ids: [repoA, repoB] });
    expect(await patch({ repo_ids: [repoB] })).toMatchObject({ repo_scope_mode: 'selected', repo_ids: [repoB] });
    expect(await patch({ repo_scope_mode: 'all' })).toMatchObject({ repo_scope_mode: 'all', repo_ids: [] });
    expect(await patch({ host_scope_mode: 'selected', host_ids: [] })).toMatchObject({ host_scope_mode: 'selected', host_ids: [] });
    expect(await patch({ host_scope_mode: 'all' })).toMatchObject({ host_scope_mode: 'all', host_ids: [] });
  });

  test('the same validation as create: past expiry, bad ranges, unknown repositories, empty body', async () => {
    const { id, body: original } = await mint();
    expectFieldError(await h.api.patch(`/api-tokens/${id}`, { expires_at: '2001-01-01T00:00:00Z' }), 'expires_at');
    expectFieldError(await h.api.patch(`/api-tokens/${id}`, { allowed_ips: ['1.2.3.4', 'nonsense'] }), 'allowed_ips[1]');
    expectFieldError(await h.api.patch(`/api-tokens/${id}`, { repo_scope_mode: 'selected', repo_ids: [2147483000] }), 'repo_ids[0]');
    expectFieldError(await h.api.patch(`/api-tokens/${id}`, { repo_ids: [repoA] }), 'repo_ids');
    expectError(await h.api.patch(`/api-tokens/${id}`, {}), 422, 'validation_error');
    const { secret: _secret, ...publicView } = original;
    expect((await h.api.get(`/api-tokens/${id}`)).body.data).toEqual(publicView);
  });

  test('a revoked token cannot be updated: 409 token_revoked', async () => {
    const { id } = await mint();
    expect((await h.api.post(`/api-tokens/${id}/revoke`)).status).toBe(204);
    expectError(await h.api.patch(`/api-tokens/${id}`, { name: 'revived' }), 409, 'token_revoked');
    expectError(await h.api.patch(`/api-tokens/${id}`, { expires_at: null }), 409, 'token_revoked');
    expect((await h.api.get(`/api-tokens/${id}`)).body.data.name).not.toBe('revived');
  });
});

describe('revoke and delete', () => {
  test('revoke with a reason: 204, the token stops working, GET shows revoked_at and revoked_reason', async () => {
    const { id, secret } = await mint({ scopes: ['me:read'] });
    expect((await h.api.get('/me', { token: secret })).status).toBe(200);

    const res = await h.api.post(`/api-tokens/${id}/revoke`, { reason: 'leaked in a CI log' });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expectError(await h.api.get('/me', { token: secret }), 401, 'token_revoked');

    const after = await h.api.get(`/api-tokens/${id}`);
    expect(after.body.data.revoked_at).toMatch(ISO);
    expect(after.body.data.revoked_reason).toBe('leaked in a CI log');

    // Revoking again is a no-op: same revoked_at, same reason, no second event.
    const again = await h.api.post(`/api-tokens/${id}/revoke`, { reason: 'second thoughts' });
    expect(again.status).toBe(204);
    const still = await h.api.get(`/api-tokens/${id}`);
    expect(still.body.data.revoked_at).toBe(after.body.data.revoked_at);
    expect(still.body.data.revoked_reason).toBe('leaked in a CI log');
    expect(await eventsOf('api_token.revoked', id)).toHaveLength(1);
  });

  test('revoke without a body records no reason', async () => {
    const { id, secret } = await mint();
    expect((await h.api.post(`/api-tokens/${id}/revoke`)).status).toBe(204);
    const after = await h.api.get(`/api-tokens/${id}`);
    expect(after.body.data.revoked_at).toMatch(ISO);
    expect(after.body.data.revoked_reason).toBeNull();
    expectError(await h.api.get('/me', { token: secret }), 401, 'token_revoked');
  });

  test('a token can revoke itself', async () => {
    const caller = await h.createCaller({ token: { scopes: TOKEN_MANAGER } });
    expect((await caller.api.post(`/api-tokens/${caller.tokenId}/revoke`, { reason: 'done' })).status).toBe(204);
    expectError(await caller.api.get('/me'), 401, 'token_revoked');
  });

  test('delete: 204, then 404, the token no longer authenticates and the row is gone', async () => {
    const { id, secret } = await mint({ scopes: ['me:read'] });
    expect((await h.api.get('/me', { token: secret })).status).toBe(200);
    const before = await tokenRows();

    const res = await h.api.delete(`/api-tokens/${id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(await tokenRows()).toBe(before - 1);
    expectError(await h.api.get(`/api-tokens/${id}`), 404, 'not_found');
    expectError(await h.api.delete(`/api-tokens/${id}`), 404, 'not_found');
    expectError(await h.api.get('/me', { token: secret }), 401, 'invalid_token');
    const list = await h.api.get('/api-tokens?per_page=200');
    expect(list.body.data.map((t: { id: number }) => t.id)).not.toContain(id);
  });

  test("delete removes the token's idempotency records and keeps its audit log entries", async () => {
    const { id, secret } = await mint({ scopes: TOKEN_MANAGER });
    const key = `self-${unique()}`;
    expect((await h.api.patch(`/api-tokens/${id}`, { name: 'renamed by itself' }, { token: secret, headers: { 'Idempotency-Key': key } })).status).toBe(200);
    const keysOf = () => h.count('api_idempotency_keys', 'token_id = ?', [id]);
    expect(await keysOf()).toBe(1);
    const logsBefore = await h.api.get(`/logs/api-tokens?token_id=${id}`);
    expect(logsBefore.status).toBe(200);
    expect(logsBefore.body.meta.total).toBeGreaterThanOrEqual(1);

    expect((await h.api.delete(`/api-tokens/${id}`)).status).toBe(204);
    expect(await keysOf()).toBe(0);
    const logsAfter = await h.api.get(`/logs/api-tokens?token_id=${id}`);
    expect(logsAfter.body.meta.total).toBe(logsBefore.body.meta.total);
    expect(logsAfter.body.data.every((entry: { token_id: number }) => entry.token_id === id)).toBe(true);
  });
});

describe('events', () => {
  test('creation writes api_token.created with the token, never its secret or hash', async () => {
    const me = await h.api.get('/me');
    const { id, secret } = await mint({ scopes: ['me:read', 'repos:read'] });
    const events = await eventsOf('api_token.created', id);
    expect(events).toHaveLength(1);
    const payload = events[0].payload;
    expect(payload.id).toBe(id);
    expect(payload.name).toEqual(expect.any(String));
    expect(payload.by_token_id).toBe(me.body.data.token.id);
    const text = JSON.stringify(payload);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(secret.slice(13));
    expect(text).not.toContain(hashToken(secret));
    expect(text).not.toMatch(/"(secret|token_hash|tokenHash)"/);
  });

  test('revocation writes api_token.revoked with the token, never its secret or hash', async () => {
    const { id, secret } = await mint();
    expect(await eventsOf('api_token.revoked', id)).toHaveLength(0);
    expect((await h.api.post(`/api-tokens/${id}/revoke`, { reason: 'rotation' })).status).toBe(204);
    const events = await eventsOf('api_token.revoked', id);
    expect(events).toHaveLength(1);
    expect(events[0].payload.id).toBe(id);
    expect(events[0].payload.revoked_at).toEqual(expect.any(String));
    const text = JSON.stringify(events[0].payload);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(hashToken(secret));
    expect(text).not.toMatch(/"(secret|token_hash|tokenHash)"/);
  });
});

describe('X-Dry-Run', () => {
  const dry = { headers: { 'x-dry-run': '1' } };

  test('create: 200 dry_run, no token, no event', async () => {
    const rows = await tokenRows();
    const events = await eventRows();
    const res = await h.api.post('/api-tokens', newToken({ scopes: ['me:read', 'repos:read'] }), dry);
    expect(res.status).toBe(200);
    expect(res.body.data.dry_run).toBe(true);
    expect(res.headers.get('location')).toBeNull();
    expect(res.text).not.toMatch(/rui_[0-9a-f]{8}_[0-9a-f]{40}/);
    expect(await tokenRows()).toBe(rows);
    expect(await eventRows()).toBe(events);

    // A dry run still validates.
    expectFieldError(await h.api.post('/api-tokens', newToken({ expires_at: '2001-01-01T00:00:00Z' }), dry), 'expires_at');
    const trueFlag = await h.api.post('/api-tokens', newToken(), { headers: { 'x-dry-run': 'true' } });
    expect(trueFlag.status).toBe(200);
    expect(trueFlag.body.data.dry_run).toBe(true);
    expect(await tokenRows()).toBe(rows);
  });

  test('patch: 200 dry_run, the token is unchanged', async () => {
    const { id } = await mint({ scopes: ['me:read', 'repos:read'] });
    const before = (await h.api.get(`/api-tokens/${id}`)).body.data;
    const res = await h.api.patch(`/api-tokens/${id}`, { name: 'dry rename', scopes: ['me:read'], expires_at: null }, dry);
    expect(res.status).toBe(200);
    expect(res.body.data.dry_run).toBe(true);
    expect((await h.api.get(`/api-tokens/${id}`)).body.data).toEqual(before);
  });

  test('revoke: 200 dry_run, the token still works, no event', async () => {
    const { id, secret } = await mint();
    const events = await eventRows();
    const res = await h.api.post(`/api-tokens/${id}/revoke`, { reason: 'dry' }, dry);
    expect(res.status).toBe(200);
    expect(res.body.data.dry_run).toBe(true);
    const after = (await h.api.get(`/api-tokens/${id}`)).body.data;
    expect(after.revoked_at).toBeNull();
    expect(after.revoked_reason).toBeNull();
    expect((await h.api.get('/me', { token: secret })).status).toBe(200);
    expect(await eventsOf('api_token.revoked', id)).toHaveLength(0);
    expect(await eventRows()).toBe(events);
  });

  test('delete: 200 dry_run naming the token, which still exists', async () => {
    const { id, secret } = await mint();
    const rows = await tokenRows();
    const res = await h.api.delete(`/api-tokens/${id}`, dry);
    expect(res.status).toBe(200);
    expect(res.body.data.dry_run).toBe(true);
    expect(res.body.data.would_delete?.api_token?.id).toBe(id);
    expect(res.text).not.toContain(secret);
    expect(await tokenRows()).toBe(rows);
    expect((await h.api.get(`/api-tokens/${id}`)).status).toBe(200);
    expect((await h.api.get('/me', { token: secret })).status).toBe(200);
  });
});
