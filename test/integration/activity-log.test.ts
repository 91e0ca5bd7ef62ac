import type { ApiResponse } from '../support/api-client';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { ISO, expectError, unique } from '../support/expectations';

/**
 * The activity log: one entry per successful API mutation (who, which action, how severe, ids
 * and names only, address, user agent, request id), none for reads, dry runs, refusals or
 * replays; GET /logs/activity lists them newest first, filtered and paginated, and only the
 * caller's own unless an unscoped token may read users.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

interface Entry {
  id: number;
  user_id: number | null;
  username: string;
  action: string;
  severity: string;
  details: Record<string, unknown> | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: Date;
}

/** A user's entries in id order; created_at (stored to the microsecond) as a Date, to the millisecond. */
async function entriesOf(userId: number): Promise<Entry[]> {
  const rows = await h.sql<Omit<Entry, 'created_at'> & { created_us: string }>(
    `select id::int as id, user_id, username, action, severity, details, ip, user_agent, request_id,
            (extract(epoch from created_at) * 1000000)::bigint::text as created_us
       from activity_logs where user_id = ? order by id`,
    [userId],
  );
  return rows.map(({ created_us: micros, ...row }) => ({ ...row, created_at: new Date(Number(BigInt(micros) / 1000n)) }));
}

async function usernameOf(caller: Caller): Promise<string> {
  const [row] = await h.sql<{ username: string }>('select username from users where id = ?', [caller.userId]);
  return row?.username as string;
}

/** The entry a request left, field for field (the time aside). */
function expected(caller: Caller, username: string, res: ApiResponse, ua: string, action: string, severity: string, details: Record<string, unknown> | null) {
  return {
    id: expect.any(Number), user_id: caller.userId, username, action, severity, details,
    ip: '127.0.0.1', user_agent: ua, request_id: res.headers.get('x-request-id'), created_at: expect.any(Date),
  };
}

describe('what is recorded', () => {
  test('creating, changing and deleting a repository: one entry each, named after the operation, without the password', async () => {
    const caller = await h.createCaller();
    const username = await usernameOf(caller);
    const ua = `activity-${unique()}`;
    const headers = { 'user-agent': ua };
    const name = `repo-${unique()}`;
    const password = `pw-${unique()}-secret`;

    const created = await caller.api.post('/repos', { name, path: `/srv/activity/${unique()}`, password }, { headers });
    expect(created.status).toBe(201);
    const id = created.body.data.id as number;
    const patched = await caller.api.patch(`/repos/${id}`, { description: 'noted' }, { headers });
    expect(patched.status).toBe(200);
    const deleted = await caller.api.delete(`/repos/${id}`, { headers });
    expect(deleted.status).toBe(204);

    const entries = await entriesOf(caller.userId);
    expect(entries).toEqual([
      expected(caller, username, created, ua, 'repo.create', 'info', { result_id: id, name }),
      expected(caller, username, patched, ua, 'repo.update', 'info', { id, name }),
      expected(caller, username, deleted, ua, 'repo.delete', 'warning', { id }),
    ]);
    expect(JSON.stringify(entries)).not.toContain(password);
  });

  test('a job keeps the ids of its body, a setting its key and never its value, a token its id and name and never its secret', async () => {
    const caller = await h.createCaller();
    const repo = await caller.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/activity/${unique()}`, password: 'pw' });
    const jobName = `job-${unique()}`;
    const job = await caller.api.post('/backup-jobs', { name: jobName, repo_id: repo.body.data.id, source_paths: ['/etc'], description: 'nightly' });
    expect(job.status).toBe(201);
    const secretValue = `hook-token-${unique()}`;
    expect((await caller.api.put('/settings/notify_webhook_token', { value: secretValue })).status).toBe(200);
    const tokenName = `token-${unique()}`;
    const token = await caller.api.post('/api-tokens', { name: tokenName, scopes: ['repos:read'] });
    expect(token.status).toBe(201);
    const tokenId = token.body.data.id as number;
    expect((await caller.api.post(`/api-tokens/${tokenId}/revoke`, {})).status).toBe(204);

    const entries = await entriesOf(caller.userId);
    expect(entries.map((e) => [e.action, e.severity, e.details])).toEqual([
      ['repo.create', 'info', { result_id: repo.body.data.id, name: repo.body.data.name }],
      ['backup_job.create', 'info', { repo_id: repo.body.data.id, result_id: job.body.data.id, name: jobName }],
      ['setting.update', 'warning', { key: 'notify_webhook_token' }],
      ['api_token.create', 'warning', { result_id: tokenId, name: tokenName }],
      ['api_token.revoke', 'warning', { id: tokenId }],
    ]);
    const stored = JSON.stringify(await h.sql('select * from activity_logs'));
    for (const secret of [secretValue, token.body.data.secret, token.body.data.secret.slice(-40), caller.token]) expect(stored).not.toContain(secret);
  });

  test('reads, dry runs, refusals, failures and idempotent replays record nothing', async () => {
    const caller = await h.createCaller();
    const readOnly = await h.createCaller({ token: { scopes: ['repos:read'] } });
    const body = () => ({ name: `repo-${unique()}`, path: `/srv/activity/${unique()}`, password: 'pw' });
    expect((await caller.api.get('/repos')).status).toBe(200);
    const dry = await caller.api.post('/repos', body(), { headers: { 'X-Dry-Run': '1' } });
    expect(dry.body.data).toEqual({ dry_run: true });
    expect((await caller.api.post('/repos', { ...body(), colour: 'blue' })).status).toBe(422);
    expectError(await readOnly.api.post('/repos', body()), 403, 'insufficient_scope');
    expectError(await caller.api.patch('/repos/999999', { description: 'x' }), 404, 'not_found');
    expectError(await caller.api.delete('/repos/999999', { headers: { 'X-Dry-Run': '1' } }), 404, 'not_found');
    expect(await entriesOf(caller.userId)).toEqual([]);
    expect(await entriesOf(readOnly.userId)).toEqual([]);

    const once = body();
    const headers = { 'Idempotency-Key': `key-${unique()}` };
    const first = await caller.api.post('/repos', once, { headers });
    const again = await caller.api.post('/repos', once, { headers });
    expect([first.status, again.status, again.headers.get('idempotent-replay')]).toEqual([201, 201, 'true']);
    expect((await entriesOf(caller.userId)).map((e) => e.action)).toEqual(['repo.create']);
  });
});

describe('GET /logs/activity', () => {
  const BASE = Date.parse('2026-11-01T10:00:00.000Z');
  const minute = (n: number) => new Date(BASE + n * 60_000);
  let viewer: Caller;
  let other: Caller;
  let viewerName: string;
  let fixture: Entry[];

  async function insert(caller: Caller, username: string, rows: [number, string, string, Record<string, unknown> | null][]): Promise<void> {
    for (const [at, action, severity, details] of rows) {
      await h.sql(
        `insert into activity_logs (user_id, token_id, username, action, severity, details, ip, user_agent, request_id, created_at) values (?, ?, ?, ?, ?, ?, '10.0.0.7', 'fixture', ?, ?)`,
        [caller.userId, caller.tokenId, username, action, severity, details === null ? null : JSON.stringify(details), `req-${at}`, minute(at)],
      );
    }
  }

  const view = (e: Entry) => ({ ...e, created_at: e.created_at.toISOString() });
  const ids = (res: ApiResponse) => res.body.data.map((e: { id: number }) => e.id);

  beforeAll(async () => {
    viewer = await h.createCaller({ user: { role: 'viewer' }, token: { scopes: ['logs:read', 'repos:read'] } });
    other = await h.createCaller({ user: { role: 'viewer' }, token: { scopes: ['logs:read'] } });
    viewerName = await usernameOf(viewer);
    await insert(viewer, viewerName, [
      [0, 'repo.create', 'info', { result_id: 1, name: 'alpha' }],
      [1, 'repo.delete', 'warning', { id: 1 }],
      [2, 'setting.update', 'warning', { key: 'api_enabled' }],
      [3, 'backup_job.run', 'info', { id: 4, result_id: 'b0e1' }],
      [4, 'user.delete', 'critical', null],
    ]);
    await insert(other, await usernameOf(other), [[0, 'repo.create', 'info', null], [2, 'repo.delete', 'warning', null], [5, 'host.update', 'info', null]]);
    fixture = await entriesOf(viewer.userId);
  });

  test('one user\u2019s entries newest first, field for field, in pages', async () => {
    const first = await h.api.get(`/logs/activity?user_id=${viewer.userId}&per_page=2`);
    expect(first.status).toBe(200);
    expect(first.body.meta).toEqual({ page: 1, per_page: 2, total: 5, total_pages: 3 });
    const pages = [first.body.data];
    for (const page of [2, 3]) pages.push((await h.api.get(`/logs/activity?user_id=${viewer.userId}&per_page=2&page=${page}`)).body.data);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual([...fixture].reverse().map(view));
    expect(pages.flat()[4]).toEqual({
      id: fixture[0]?.id, user_id: viewer.userId, username: viewerName, action: 'repo.create', severity: 'info', details: { result_id: 1, name: 'alpha' },
      ip: '10.0.0.7', user_agent: 'fixture', request_id: 'req-0', created_at: '2026-11-01T10:00:00.000Z',
    });
    for (const entry of pages.flat()) expect(entry.created_at).toMatch(ISO);
  });

  test('filters by action, severity and time window (since inclusive, until exclusive), alone and together', async () => {
    const q = (filters: string) => h.api.get(`/logs/activity?user_id=${viewer.userId}&${filters}`);
    const byId = (...at: number[]) => at.map((n) => fixture[n]?.id);
    expect(ids(await q('severity=warning'))).toEqual(byId(2, 1));
    expect(ids(await q('severity=critical'))).toEqual(byId(4));
    expect(ids(await q('action=repo.create'))).toEqual(byId(0));
    expect(ids(await q(`since=${minute(1).toISOString()}&until=${minute(3).toISOString()}`))).toEqual(byId(2, 1));
    expect(ids(await q(`since=${minute(2).toISOString()}&severity=info`))).toEqual(byId(3));
    const everyRepoCreate = await h.api.get('/logs/activity?action=repo.create&per_page=200');
    const creators = await h.sql<{ user_id: number }>("select distinct user_id from activity_logs where action = 'repo.create'");
    expect(new Set(everyRepoCreate.body.data.map((e: { user_id: number }) => e.user_id))).toEqual(new Set(creators.map((r) => r.user_id)));
    expect(everyRepoCreate.body.meta.total).toBe(await h.count('activity_logs', "action = 'repo.create'"));
    expect(creators.map((r) => r.user_id)).toEqual(expect.arrayContaining([viewer.userId, other.userId]));
    expect((await q('severity=loud')).status).toBe(422);
  });

  test('the administrator\u2019s unfiltered list is everyone\u2019s, newest first', async () => {
    const res = await h.api.get('/logs/activity?per_page=200');
    expect(res.body.meta.total).toBe(await h.count('activity_logs'));
    const times = res.body.data.map((e: { created_at: string }) => Date.parse(e.created_at));
    expect(times).toEqual([...times].sort((x: number, y: number) => y - x));
  });

  test('a caller without users:read sees its own entries only, whatever it filters on', async () => {
    const own = await viewer.api.get('/logs/activity?per_page=200');
    expect(own.body.meta.total).toBe(5);
    expect(ids(own)).toEqual([...fixture].reverse().map((e) => e.id));
    expect((await viewer.api.get(`/logs/activity?user_id=${viewer.userId}`)).body.meta.total).toBe(5);
    for (const userId of [other.userId, 1]) {
      const theirs = await viewer.api.get(`/logs/activity?user_id=${userId}`);
      expect(theirs.status).toBe(200);
      expect(theirs.body).toMatchObject({ data: [], meta: { total: 0 } });
    }
    expect(ids(await viewer.api.get('/logs/activity?severity=warning'))).toEqual([fixture[2]?.id, fixture[1]?.id]);
    const theirs = await other.api.get('/logs/activity?action=repo.create');
    expect(theirs.body.data.map((e: { user_id: number }) => e.user_id)).toEqual([other.userId]);
  });

  test('an administrator\u2019s token without users:read, or limited to some repositories, sees its own entries only', async () => {
    const narrowToken = await h.createCaller({ token: { scopes: ['logs:read'] } });
    const scoped = await h.createCaller({ token: { scopes: ['logs:read', 'users:read'], repoScopeMode: 'selected', repoScopeIds: [] } });
    for (const caller of [narrowToken, scoped]) {
      await insert(caller, await usernameOf(caller), [[7, 'repo.update', 'info', null]]);
      const res = await caller.api.get('/logs/activity?per_page=200');
      expect(res.body.data.map((e: { user_id: number }) => e.user_id)).toEqual([caller.userId]);
      expect((await caller.api.get(`/logs/activity?user_id=${viewer.userId}`)).body.meta.total).toBe(0);
    }
  });

  test('a token limited to some repositories sees the entries made through it, not those its user made through wider tokens', async () => {
    const wide = await h.createCaller();
    const own = await wide.api.post('/repos', { name: `mine-${unique()}`, path: `/srv/activity/${unique()}`, password: 'pw' });
    const secretName = `other-project-${unique()}`;
    expect((await wide.api.post('/repos', { name: secretName, path: `/srv/activity/${unique()}`, password: 'pw' })).status).toBe(201);
    const minted = await wide.api.post('/api-tokens', { name: `ci-${unique()}`, scopes: ['logs:read', 'repos:read', 'repos:write'], repo_scope_mode: 'selected', repo_ids: [own.body.data.id] });
    expect(minted.status).toBe(201);
    const narrow = wide.api.withToken(minted.body.data.secret);
    const patched = await narrow.patch(`/repos/${own.body.data.id}`, { description: 'through the narrow token' });
    expect(patched.status).toBe(200);

    const seen = await narrow.get('/logs/activity?per_page=200');
    expect(seen.body.data.map((e: { action: string; details: unknown }) => [e.action, e.details])).toEqual([['repo.update', { id: own.body.data.id, name: own.body.data.name }]]);
    expect(JSON.stringify(seen.body)).not.toContain(secretName);
    // The user's wide token still sees everything the user did.
    expect((await wide.api.get(`/logs/activity?per_page=200&user_id=${wide.userId}`)).body.data.map((e: { action: string }) => e.action)).toEqual(['repo.update', 'api_token.create', 'repo.create', 'repo.create']);
  });

  test('a token without logs:read cannot list the log', async () => {
    const noLogs = await h.createCaller({ token: { scopes: ['repos:read'] } });
    expectError(await noLogs.api.get('/logs/activity'), 403, 'insufficient_scope');
  });
});
