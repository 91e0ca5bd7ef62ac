import { ApiToken, User } from '../../db/entities';
import { generateToken } from '../../api/auth/tokens';
import type { ApiClient, ApiResponse } from '../support/api-client';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { ISO, expectError, expectFieldError, unique } from '../support/expectations';

/**
 * The API audit log: every request leaves one row in api_token_logs (token, user, method, route
 * template, status, address, user agent, latency, error code), none is lost under concurrency,
 * and GET /logs/api-tokens lists them newest first, filtered, and only the caller's own unless
 * the caller manages users.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

interface LogRow {
  id: number;
  token_id: number | null;
  user_id: number | null;
  method: string;
  endpoint: string;
  status: number;
  ip: string | null;
  user_agent: string | null;
  latency_ms: number;
  error: string | null;
  created_at: Date;
}

const COLUMNS = `id::int as id, token_id, user_id, method, endpoint, status, ip, user_agent, latency_ms, error,
  (extract(epoch from created_at) * 1000000)::bigint::text as created_us`;

/** Rows of api_token_logs in id order; created_at (stored to the microsecond) as a Date, to the millisecond. */
async function logRows(where: string, params: unknown[] = []): Promise<LogRow[]> {
  const rows = await h.sql<Omit<LogRow, 'created_at'> & { created_us: string }>(
    `select ${COLUMNS} from api_token_logs where ${where} order by id`,
    params,
  );
  return rows.map(({ created_us: micros, ...row }) => ({ ...row, created_at: new Date(Number(BigInt(micros) / 1000n)) }));
}

/** A user agent no other request uses: it finds the rows of one request, token or not. */
const agent = () => `audit-test/${unique()}${unique()}`;

/** Sends one request with a fresh user agent and returns the response and the rows it left. */
async function traced(
  api: ApiClient,
  method: string,
  path: string,
  options: { body?: unknown; token?: string | null } = {},
): Promise<{ res: ApiResponse; rows: LogRow[]; ua: string }> {
  const ua = agent();
  const res = await api.request(method, path, { ...options, headers: { 'user-agent': ua } });
  return { res, rows: await logRows('user_agent = ?', [ua]), ua };
}

/** The one row a request left, with every column checked except the id and the time. */
function expectOneRow(rows: LogRow[], expected: Omit<LogRow, 'id' | 'created_at' | 'latency_ms' | 'ip'>, startedAt: number): void {
  expect(rows).toHaveLength(1);
  const [row] = rows as [LogRow];
  expect(row).toEqual({ ...expected, id: expect.any(Number), ip: '127.0.0.1', latency_ms: expect.any(Number), created_at: expect.any(Date) });
  expect(Number.isInteger(row.latency_ms)).toBe(true);
  expect(row.latency_ms).toBeGreaterThanOrEqual(0);
  // Database and test share a clock; the margin only absorbs clock granularity.
  expect(row.created_at.getTime()).toBeGreaterThanOrEqual(startedAt - 5000);
  expect(row.created_at.getTime()).toBeLessThanOrEqual(Date.now() + 5000);
}

const newRepo = () => ({ name: `repo-${unique()}`, path: `/srv/backups/${unique()}`, password: `pw-${unique()}` });

describe('every request leaves one row in api_token_logs', () => {
  test('a successful GET: token, user, method, route, 200, address, user agent, no error', async () => {
    const caller = await h.createCaller();
    const startedAt = Date.now();
    const { res, rows, ua } = await traced(caller.api, 'GET', '/repos');
    expect(res.status).toBe(200);
    expectOneRow(rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'GET', endpoint: '/repos', status: 200, user_agent: ua, error: null }, startedAt);
  });

  test('a 404 on an unknown id records the route template and not_found, not the id', async () => {
    const caller = await h.createCaller();
    const startedAt = Date.now();
    const { res, rows, ua } = await traced(caller.api, 'GET', '/repos/987654');
    expectError(res, 404, 'not_found');
    expectOneRow(rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'GET', endpoint: '/repos/{id}', status: 404, user_agent: ua, error: 'not_found' }, startedAt);
    expect(rows[0]?.endpoint).not.toContain('987654');
  });

  test('a 401 without a token is recorded with no token and no user', async () => {
    const startedAt = Date.now();
    const { res, rows, ua } = await traced(h.api, 'GET', '/repos', { token: null });
    expectError(res, 401, 'missing_token');
    expectOneRow(rows, { token_id: null, user_id: null, method: 'GET', endpoint: '/repos', status: 401, user_agent: ua, error: 'missing_token' }, startedAt);
  });

  test('a 401 with an unknown token is recorded with no token and no user', async () => {
    const startedAt = Date.now();
    const { res, rows, ua } = await traced(h.api, 'GET', '/repos', { token: generateToken().token });
    expectError(res, 401, 'invalid_token');
    expectOneRow(rows, { token_id: null, user_id: null, method: 'GET', endpoint: '/repos', status: 401, user_agent: ua, error: 'invalid_token' }, startedAt);
  });

  test('a 401 with a revoked token is recorded against that token and its user', async () => {
    const revoked = await h.createCaller({ token: { revokedAt: new Date(Date.now() - 60_000), revokedReason: 'test' } });
    const startedAt = Date.now();
    const { res, rows, ua } = await traced(revoked.api, 'GET', '/repos/1');
    expectError(res, 401, 'token_revoked');
    expectOneRow(rows, { token_id: revoked.tokenId, user_id: revoked.userId, method: 'GET', endpoint: '/repos/{id}', status: 401, user_agent: ua, error: 'token_revoked' }, startedAt);
  });

  test('a 422 validation error is recorded with validation_error', async () => {
    const caller = await h.createCaller();
    const startedAt = Date.now();
    const query = await traced(caller.api, 'GET', '/repos?per_page=0');
    expectFieldError(query.res, 'per_page');
    expectOneRow(query.rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'GET', endpoint: '/repos', status: 422, user_agent: query.ua, error: 'validation_error' }, startedAt);

    const body = await traced(caller.api, 'POST', '/repos', { body: { ...newRepo(), colour: 'blue' } });
    expectFieldError(body.res, 'colour');
    expectOneRow(body.rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'POST', endpoint: '/repos', status: 422, user_agent: body.ua, error: 'validation_error' }, startedAt);
  });

  test('a POST that creates, a PATCH and a DELETE are recorded with their status and route template', async () => {
    const caller = await h.createCaller();
    const startedAt = Date.now();
    const created = await traced(caller.api, 'POST', '/repos', { body: newRepo() });
    expect(created.res.status).toBe(201);
    expectOneRow(created.rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'POST', endpoint: '/repos', status: 201, user_agent: created.ua, error: null }, startedAt);
    const id = created.res.body.data.id as number;

    const patched = await traced(caller.api, 'PATCH', `/repos/${id}`, { body: { description: 'audited' } });
    expect(patched.res.status).toBe(200);
    expectOneRow(patched.rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'PATCH', endpoint: '/repos/{id}', status: 200, user_agent: patched.ua, error: null }, startedAt);

    const deleted = await traced(caller.api, 'DELETE', `/repos/${id}`);
    expect(deleted.res.status).toBe(204);
    expectOneRow(deleted.rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'DELETE', endpoint: '/repos/{id}', status: 204, user_agent: deleted.ua, error: null }, startedAt);
  });

  test('a 403 for a missing scope is recorded with the token, the user and insufficient_scope', async () => {
    const caller = await h.createCaller({ token: { scopes: ['me:read'] } });
    const startedAt = Date.now();
    const { res, rows, ua } = await traced(caller.api, 'GET', '/repos');
    expectError(res, 403, 'insufficient_scope');
    expectOneRow(rows, { token_id: caller.tokenId, user_id: caller.userId, method: 'GET', endpoint: '/repos', status: 403, user_agent: ua, error: 'insufficient_scope' }, startedAt);
  });

  test('a request to an unknown route is recorded as a 404', async () => {
    const caller = await h.createCaller();
    const { res, rows } = await traced(caller.api, 'GET', `/no-such-route-${unique()}`);
    expectError(res, 404, 'not_found');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ method: 'GET', status: 404, error: 'not_found' });
  });
  test('a 405 on a known path records the route template, not the raw address', async () => {
    const caller = await h.createCaller();
    const { res, rows } = await traced(caller.api, 'PUT', '/repos/424242', { body: newRepo() });
    expectError(res, 405, 'method_not_allowed');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ method: 'PUT', status: 405, error: 'method_not_allowed', endpoint: '/repos/{id}' });
  });

  test('an oversized user agent is clipped to the column, and the request is still recorded', async () => {
    const caller = await h.createCaller();
    const ua = `long-${unique()}-${'u'.repeat(1000)}`;
    const res = await caller.api.get('/repos', { headers: { 'user-agent': ua } });
    expect(res.status).toBe(200);
    const rows = await logRows('token_id = ?', [caller.tokenId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 200, endpoint: '/repos', user_agent: ua.slice(0, 255) });
  });
});

describe('no entry is lost', () => {
  test('300 concurrent requests of one token leave exactly 300 rows with the right statuses', async () => {
    const caller = await h.createCaller();
    expect(await logRows('token_id = ?', [caller.tokenId])).toHaveLength(0);
    const plan = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? '/repos/999999' : '/repos'));
    const responses = await Promise.all(plan.map((path) => caller.api.get(path)));
    responses.forEach((res, i) => expect({ path: plan[i], status: res.status }).toEqual({ path: plan[i], status: plan[i] === '/repos' ? 200 : 404 }));

    const rows = await logRows('token_id = ?', [caller.tokenId]);
    expect(rows).toHaveLength(300);
    const tally = (status: number, endpoint: string, error: string | null) =>
      rows.filter((r) => r.status === status && r.endpoint === endpoint && r.error === error && r.method === 'GET' && r.user_id === caller.userId).length;
    expect({ ok: tally(200, '/repos', null), missing: tally(404, '/repos/{id}', 'not_found') }).toEqual({ ok: 200, missing: 100 });
  });
});

describe('GET /logs/api-tokens', () => {
  /** Every entry of a list, page by page (as `api` sees it). */
  async function allEntries(api: ApiClient, query: string): Promise<any[]> {
    const entries: any[] = [];
    for (let page = 1; ; page++) {
      const res = await api.get(`/logs/api-tokens?${query}${query ? '&' : ''}page=${page}&per_page=200`);
      expect(res.status).toBe(200);
      entries.push(...res.body.data);
      if (page >= res.body.meta.total_pages) return entries;
    }
  }

  const view = (row: LogRow) => ({
    id: row.id,
    token_id: row.token_id,
    user_id: row.user_id,
    method: row.method,
    endpoint: row.endpoint,
    status: row.status,
    ip: row.ip,
    user_agent: row.user_agent,
    latency_ms: row.latency_ms,
    error: row.error,
    created_at: row.created_at.toISOString(),
  });

  test('lists one token\'s requests newest first, with page meta, as stored', async () => {
    const caller = await h.createCaller();
    const made: Array<[string, string, unknown?]> = [
      ['GET', '/repos'],
      ['GET', '/repos/999999'],
      ['GET', '/me'],
      ['GET', '/repos?per_page=0'],
      ['POST', '/repos', newRepo()],
    ];
    for (const [method, path, body] of made) await caller.api.request(method, path, { body });
    const stored = await logRows('token_id = ?', [caller.tokenId]);
    expect(stored.map((r) => [r.method, r.status])).toEqual([['GET', 200], ['GET', 404], ['GET', 200], ['GET', 422], ['POST', 201]]);

    const first = await h.api.get(`/logs/api-tokens?token_id=${caller.tokenId}&per_page=2`);
    expect(first.status).toBe(200);
    expect(first.body.error).toBeNull();
    expect(first.body.meta).toEqual({ page: 1, per_page: 2, total: 5, total_pages: 3 });
    const pages = [first.body.data];
    for (const page of [2, 3]) {
      const res = await h.api.get(`/logs/api-tokens?token_id=${caller.tokenId}&per_page=2&page=${page}`);
      expect(res.body.meta).toEqual({ page, per_page: 2, total: 5, total_pages: 3 });
      pages.push(res.body.data);
    }
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    // Newest first: the reverse of the order the requests were made in, field for field as stored.
    expect(pages.flat()).toEqual([...stored].reverse().map(view));
    for (const entry of pages.flat()) expect(entry.created_at).toMatch(ISO);

    const beyond = await h.api.get(`/logs/api-tokens?token_id=${caller.tokenId}&per_page=2&page=4`);
    expect(beyond.body.data).toEqual([]);
    expect(beyond.body.meta).toEqual({ page: 4, per_page: 2, total: 5, total_pages: 3 });
  });

  test('the unfiltered list is newest first across tokens', async () => {
    const a = await h.createCaller();
    const b = await h.createCaller();
    await a.api.get('/repos');
    await b.api.get('/repos');
    await a.api.get('/me');
    const res = await h.api.get('/logs/api-tokens?per_page=200');
    expect(res.status).toBe(200);
    const times = res.body.data.map((e: { created_at: string }) => Date.parse(e.created_at));
    expect(times).toEqual([...times].sort((x: number, y: number) => y - x));
    const ours = res.body.data.filter((e: { token_id: number }) => e.token_id === a.tokenId || e.token_id === b.tokenId);
    expect(ours.map((e: { token_id: number; endpoint: string }) => [e.token_id, e.endpoint])).toEqual([[a.tokenId, '/me'], [b.tokenId, '/repos'], [a.tokenId, '/repos']]);
  });

  test('filters by token_id, status and method, alone and together', async () => {
    const caller = await h.createCaller();
    const other = await h.createCaller();
    await caller.api.get('/repos');
    await caller.api.get('/repos/999999');
    await caller.api.get('/repos/999998');
    await caller.api.post('/repos', newRepo());
    await caller.api.post('/repos', { name: 123 });
    await other.api.get('/repos/999999');
    await other.api.post('/repos', newRepo());

    const byToken = await allEntries(h.api, `token_id=${caller.tokenId}`);
    expect(byToken).toHaveLength(5);
    expect(byToken.every((e) => e.token_id === caller.tokenId)).toBe(true);

    const notFound = await allEntries(h.api, `token_id=${caller.tokenId}&status=404`);
    expect(notFound.map((e) => [e.status, e.endpoint])).toEqual([[404, '/repos/{id}'], [404, '/repos/{id}']]);

    const posts = await allEntries(h.api, `token_id=${caller.tokenId}&method=POST`);
    expect(posts.map((e) => [e.method, e.status])).toEqual([['POST', 422], ['POST', 201]]);

    const created = await allEntries(h.api, `token_id=${caller.tokenId}&method=POST&status=201`);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ token_id: caller.tokenId, method: 'POST', status: 201, endpoint: '/repos' });

    // Without token_id, status and method filter across every token.
    const all404 = await allEntries(h.api, 'status=404');
    expect(all404.length).toBeGreaterThanOrEqual(3);
    expect(all404.every((e) => e.status === 404)).toBe(true);
    expect(all404.filter((e) => e.token_id === other.tokenId)).toHaveLength(1);
    const allPosts = await allEntries(h.api, 'method=POST');
    expect(allPosts.every((e) => e.method === 'POST')).toBe(true);
    expect(allPosts.filter((e) => e.token_id === other.tokenId)).toHaveLength(1);

    const none = await h.api.get(`/logs/api-tokens?token_id=${caller.tokenId}&method=DELETE`);
    expect(none.body.data).toEqual([]);
    expect(none.body.meta).toMatchObject({ total: 0 });
  });

  describe('since and until', () => {
    let caller: Caller;
    const DAYS = ['2021-01-01T00:00:00.000Z', '2021-01-02T00:00:00.000Z', '2021-01-03T00:00:00.000Z'];

    beforeAll(async () => {
      caller = await h.createCaller();
      for (let i = 0; i < DAYS.length; i++) await caller.api.get(`/repos/${900000 + i}`);
      const rows = await logRows('token_id = ?', [caller.tokenId]);
      expect(rows).toHaveLength(3);
      // Pin the three entries to known times, so the bounds are exact.
      for (const [i, row] of rows.entries()) await h.sql('update api_token_logs set created_at = ? where id = ?', [DAYS[i], row.id]);
    });

    const times = async (query: string) =>
      (await allEntries(h.api, `token_id=${caller.tokenId}&${query}`)).map((e) => e.created_at as string);

    test('since keeps entries at or after the time', async () => {
      expect(await times('since=2021-01-02T00:00:00Z')).toEqual([DAYS[2], DAYS[1]]);
      expect(await times('since=2021-01-01T12:00:00Z')).toEqual([DAYS[2], DAYS[1]]);
      expect(await times('since=2020-12-31T00:00:00Z')).toEqual([DAYS[2], DAYS[1], DAYS[0]]);
      expect(await times('since=2021-01-04T00:00:00Z')).toEqual([]);
      // An offset is honoured: 01:00+01:00 is midnight UTC.
      expect(await times(`since=${encodeURIComponent('2021-01-02T01:00:00+01:00')}`)).toEqual([DAYS[2], DAYS[1]]);
    });

    test('until keeps entries before the time', async () => {
      expect(await times('until=2021-01-02T12:00:00Z')).toEqual([DAYS[1], DAYS[0]]);
      expect(await times('until=2021-01-01T12:00:00Z')).toEqual([DAYS[0]]);
      expect(await times('until=2020-12-31T00:00:00Z')).toEqual([]);
      expect(await times('until=2021-01-04T00:00:00Z')).toEqual([DAYS[2], DAYS[1], DAYS[0]]);
    });

    test('since and until together select a window', async () => {
      expect(await times('since=2021-01-01T12:00:00Z&until=2021-01-02T12:00:00Z')).toEqual([DAYS[1]]);
      expect(await times('since=2021-01-02T12:00:00Z&until=2021-01-01T12:00:00Z')).toEqual([]);
    });

    test('until is exclusive, as the contract says ("only entries before this time")', async () => {
      expect(await times('until=2021-01-02T00:00:00Z')).toEqual([DAYS[0]]);
    });

    test('malformed filters are 422 naming the parameter', async () => {
      expectFieldError(await h.api.get('/logs/api-tokens?since=yesterday'), 'since');
      expectFieldError(await h.api.get('/logs/api-tokens?until=2021-13-45'), 'until');
      expectFieldError(await h.api.get('/logs/api-tokens?status=99'), 'status');
      expectFieldError(await h.api.get('/logs/api-tokens?status=abc'), 'status');
      expectFieldError(await h.api.get('/logs/api-tokens?method=FETCH'), 'method');
      expectFieldError(await h.api.get('/logs/api-tokens?token_id=0'), 'token_id');
      expectFieldError(await h.api.get('/logs/api-tokens?token_id=abc'), 'token_id');
    });
  });

  describe('who sees what', () => {
    let admin: Caller;
    let viewer: Caller;
    let viewerSecond: { token: string; tokenId: number };
    let stranger: Caller;
    let firstAdminTokenId: number;
    const VIEWER_SCOPES = ['logs:read', 'me:read', 'repos:read'];

    beforeAll(async () => {
      admin = await h.createCaller({ user: { role: 'admin' } });
      viewer = await h.createCaller({ user: { role: 'viewer' }, token: { scopes: VIEWER_SCOPES } });
      stranger = await h.createCaller({ user: { role: 'operator' } });
      // A second token of the viewer.
      const em = h.services.orm.em.fork();
      const minted = generateToken();
      const record = em.create(ApiToken, {
        user: em.getReference(User, viewer.userId), name: 'second', prefix: minted.prefix, tokenHash: minted.hash, scopes: VIEWER_SCOPES, rateLimitPerMinute: 0,
      });
      await em.flush();
      viewerSecond = { token: minted.token, tokenId: record.id };

      // Requests by everyone before anyone looks.
      const ua = agent();
      expect((await h.api.get('/repos', { headers: { 'user-agent': ua } })).status).toBe(200);
      firstAdminTokenId = (await logRows('user_agent = ?', [ua]))[0]?.token_id as number;
      expect(firstAdminTokenId).toEqual(expect.any(Number));
      expect((await admin.api.get('/repos')).status).toBe(200);
      expect((await admin.api.get('/repos/999999')).status).toBe(404);
      expect((await viewer.api.get('/repos')).status).toBe(200);
      expect((await viewer.api.get('/me')).status).toBe(200);
      expect((await viewer.api.get('/hosts')).status).toBe(403);
      expect((await viewer.api.get('/repos', { token: viewerSecond.token })).status).toBe(200);
      expect((await stranger.api.get('/repos')).status).toBe(200);
      expect((await stranger.api.get('/backup-jobs')).status).toBe(200);
    });

    test('an admin (users.manage) sees the entries of other users\' tokens', async () => {
      for (const [tokenId, userId] of [[viewer.tokenId, viewer.userId], [viewerSecond.tokenId, viewer.userId], [stranger.tokenId, stranger.userId], [firstAdminTokenId, null]] as const) {
        const stored = await logRows('token_id = ?', [tokenId]);
        expect(stored.length).toBeGreaterThan(0);
        const entries = await allEntries(admin.api, `token_id=${tokenId}`);
        expect(entries.map((e) => e.id)).toEqual(stored.map((r) => r.id).reverse());
        if (userId !== null) expect(entries.every((e) => e.user_id === userId)).toBe(true);
      }
      const everything = await allEntries(admin.api, '');
      const tokens = new Set(everything.map((e) => e.token_id));
      for (const id of [viewer.tokenId, viewerSecond.tokenId, stranger.tokenId, firstAdminTokenId, admin.tokenId]) expect(tokens.has(id)).toBe(true);
      // Entries without a token (failed authentications) are visible to an admin as well.
      await h.api.get('/repos', { token: null });
      expect((await allEntries(admin.api, '')).some((e) => e.token_id === null)).toBe(true);
    });

    test('a viewer sees exactly the entries of its own tokens, and nobody else\'s', async () => {
      const own = await logRows('token_id in (?, ?)', [viewer.tokenId, viewerSecond.tokenId]);
      expect(new Set(own.map((r) => r.token_id))).toEqual(new Set([viewer.tokenId, viewerSecond.tokenId]));
      expect(own.some((r) => r.status === 403)).toBe(true);

      const entries = await allEntries(viewer.api, '');
      expect(entries.map((e) => e.id).sort((x, y) => x - y)).toEqual(own.map((r) => r.id));
      expect(entries.every((e) => e.user_id === viewer.userId)).toBe(true);

      const ownNow = await logRows('user_id = ?', [viewer.userId]);
      const res = await viewer.api.get('/logs/api-tokens?per_page=200');
      expect(res.body.meta.total).toBe(ownNow.length);
      expect(res.body.data.map((e: { id: number }) => e.id)).toEqual(ownNow.map((r) => r.id).reverse());

      // Filters do not widen what the viewer may see.
      for (const tokenId of [stranger.tokenId, admin.tokenId, firstAdminTokenId]) {
        const theirs = await viewer.api.get(`/logs/api-tokens?token_id=${tokenId}`);
        expect(theirs.status).toBe(200);
        expect(theirs.body.data).toEqual([]);
        expect(theirs.body.meta).toMatchObject({ total: 0 });
      }
      const second = await allEntries(viewer.api, `token_id=${viewerSecond.tokenId}`);
      expect(second.map((e) => e.id)).toEqual(own.filter((r) => r.token_id === viewerSecond.tokenId).map((r) => r.id).reverse());
      const forbidden = await allEntries(viewer.api, 'status=403');
      expect(forbidden.length).toBeGreaterThan(0);
      expect(forbidden.every((e) => e.user_id === viewer.userId && e.status === 403)).toBe(true);
    });

    test('a viewer token without logs:read cannot list the log', async () => {
      const noLogs = await h.createCaller({ user: { role: 'viewer' }, token: { scopes: ['me:read', 'repos:read'] } });
      expectError(await noLogs.api.get('/logs/api-tokens'), 403, 'insufficient_scope');
    });
  });

  test('a token secret in an unknown address does not reach the log', async () => {
    const caller = await h.createCaller();
    const res = await caller.api.get(`/${caller.token}`);
    expectError(res, 404, 'not_found');
    const stored = await logRows('token_id is null and status = 404');
    expect(stored.length).toBeGreaterThan(0);
    const list = await h.api.get('/logs/api-tokens?status=404&per_page=200');
    for (const [where, text] of [['stored rows', JSON.stringify(stored)], ['GET /logs/api-tokens', list.text]]) {
      const leaked = text.includes(caller.token) || text.includes(caller.token.slice(-40));
      expect({ where, leaked }).toEqual({ where, leaked: false });
    }
  });

  test('a CORS preflight is recorded as one, never by its raw address', async () => {
    expect((await h.api.put('/settings/api_cors_allowed_origins', { value: ['https://good.example'] })).status).toBe(200);
    const secret = `rui_deadbeef_${'0'.repeat(40)}`;
    const agent = `preflight-${unique()}`;
    const res = await fetch(`${h.api.baseUrl}/${secret}/whatever`, {
      method: 'OPTIONS',
      headers: { origin: 'https://good.example', 'access-control-request-method': 'GET', 'user-agent': agent },
    });
    expect(res.status).toBe(204);
    const rows = await logRows('user_agent = ?', [agent]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ method: 'OPTIONS', status: 204, endpoint: '(CORS preflight)' });
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  test('no entry holds an Authorization header or a token secret, wherever the client put it', async () => {
    const caller = await h.createCaller();
    const viewer = await h.createCaller({ user: { role: 'viewer' }, token: { scopes: ['logs:read', 'me:read', 'repos:read'] } });
    const revoked = await h.createCaller({ token: { revokedAt: new Date() } });
    const unknownToken = generateToken().token;
    const secrets = [h.adminToken, caller.token, viewer.token, revoked.token, unknownToken];

    await caller.api.get('/repos');
    await caller.api.get('/repos/999999');
    await caller.api.post('/repos', newRepo());
    await viewer.api.get('/repos');
    await revoked.api.get('/repos');
    await h.api.get('/repos', { token: unknownToken });
    // A secret in the query string (a common client mistake) must not reach the log either.
    await caller.api.get(`/repos?access_token=${caller.token}`);
    await viewer.api.get(`/repos/999999?token=${viewer.token}`);

    const adminView = await h.api.get('/logs/api-tokens?per_page=200');
    const viewerView = await viewer.api.get('/logs/api-tokens?per_page=200');
    const adminPages = [adminView.text];
    for (let page = 2; page <= adminView.body.meta.total_pages; page++) adminPages.push((await h.api.get(`/logs/api-tokens?per_page=200&page=${page}`)).text);
    expect(viewerView.body.data.length).toBeGreaterThan(0);
    expect(adminView.body.data.some((e: { token_id: number }) => e.token_id === caller.tokenId)).toBe(true);

    const stored = JSON.stringify(await logRows('true'));
    const texts: Array<[string, string]> = [...adminPages.map((text, i): [string, string] => [`admin page ${i + 1}`, text]), ['viewer list', viewerView.text], ['stored rows', stored]];
    for (const [where, text] of texts) {
      for (const secret of secrets) {
        // The secret half alone would be as bad as the whole token.
        const leaked = text.includes(secret) || text.includes(secret.slice(-40));
        expect({ where, token: secret.slice(0, 12), leaked }).toEqual({ where, token: secret.slice(0, 12), leaked: false });
      }
      expect({ where, bearer: /bearer/i.test(text) }).toEqual({ where, bearer: false });
    }
  });
});
