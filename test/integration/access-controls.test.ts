import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../../api/app';
import { ApiClient, type ApiResponse } from '../support/api-client';
import { expectError, expectFieldError, ISO } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';

/**
 * Access controls around the operations: the token's IP allow-list, CORS (global and per-token
 * origins), the global API switch and the settings routes that drive them.
 */
let h: Harness;
/** Extra servers of the app, on other loopback addresses (see serveOn). */
const ownServers: Server[] = [];

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await Promise.all(ownServers.map((server) => new Promise((resolve) => server.close(resolve))));
  await h?.stop();
});

const sql = <T = Record<string, unknown>>(query: string, params: unknown[] = []) => h.sql<T>(query, params);

/** The stored row of a setting, or undefined when only the default applies. */
async function storedSetting(key: string): Promise<{ value: unknown; updated_at: Date } | undefined> {
  const [row] = await sql<{ value: unknown; updated_at: Date }>('select value, updated_at from settings where key = ?', [key]);
  return row;
}

/** A request outside the contract client (OPTIONS has no operation), shaped like its answers. */
async function rawRequest(method: string, url: string, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const response = await fetch(url, { method, headers });
  const text = await response.text();
  const isJson = (response.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: response.status, headers: response.headers, body: isJson && text ? JSON.parse(text) : text, text };
}

/** Serves buildApp(h.services) on `host` (port 0) and returns its port. */
async function serveOn(host: string): Promise<number> {
  const server = buildApp(h.services).listen(0, host);
  ownServers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return (server.address() as AddressInfo).port;
}
const varyHeader = (res: ApiResponse) => (res.headers.get('vary') ?? '').split(',').map((v) => v.trim().toLowerCase());
const listHeader = (res: ApiResponse, name: string) => (res.headers.get(name) ?? '').split(',').map((v) => v.trim().toLowerCase()).filter(Boolean);

describe('the IP allow-list of a token', () => {
  test('a token limited to 10.0.0.0/8 is 403 ip_not_allowed from 127.0.0.1', async () => {
    const caller = await h.createCaller({ token: { allowedIps: ['10.0.0.0/8'] } });
    expectError(await caller.api.get('/me'), 403, 'ip_not_allowed');
    expectError(await caller.api.get('/repos'), 403, 'ip_not_allowed');
  });

  test('127.0.0.0/8 and 127.0.0.1 let a loopback client in', async () => {
    for (const allowedIps of [['127.0.0.0/8'], ['127.0.0.1'], ['10.0.0.0/8', '127.0.0.1']]) {
      const caller = await h.createCaller({ token: { allowedIps } });
      const res = await caller.api.get('/me');
      expect({ allowedIps, status: res.status }).toEqual({ allowedIps, status: 200 });
    }
  });

  test('a token is not let in from an address next to its list', async () => {
    for (const allowedIps of [['127.0.0.2'], ['127.0.1.0/24'], ['::1']]) {
      const caller = await h.createCaller({ token: { allowedIps } });
      expectError(await caller.api.get('/me'), 403, 'ip_not_allowed');
    }
  });

  test('X-Forwarded-For does not change the client address (no proxy is trusted by default)', async () => {
    const caller = await h.createCaller({ token: { allowedIps: ['10.1.2.3'] } });
    for (const forwarded of ['10.1.2.3', '10.1.2.3, 127.0.0.1']) {
      expectError(await caller.api.get('/me', { headers: { 'x-forwarded-for': forwarded, 'x-real-ip': '10.1.2.3' } }), 403, 'ip_not_allowed');
    }
    const loopback = await h.createCaller({ token: { allowedIps: ['127.0.0.1'] } });
    expect((await loopback.api.get('/me', { headers: { 'x-forwarded-for': '10.1.2.3' } })).status).toBe(200);
  });

  test('behind TRUST_PROXY=1, the client address is the entry the proxy appended, never one the client sent', async () => {
    process.env.TRUST_PROXY = '1';
    let port: number;
    try {
      port = await serveOn('127.0.0.1');
    } finally {
      delete process.env.TRUST_PROXY;
    }
    const caller = await h.createCaller({ token: { allowedIps: ['10.0.0.1'] } });
    const viaProxy = new ApiClient(`http://127.0.0.1:${port}`, caller.token, h.services.contract);
    // The client claims 10.0.0.1; the proxy appends the address it really saw.
    expectError(await viaProxy.get('/me', { headers: { 'x-forwarded-for': '10.0.0.1, 203.0.113.9' } }), 403, 'ip_not_allowed');
    expect((await viaProxy.get('/me', { headers: { 'x-forwarded-for': '203.0.113.9, 10.0.0.1' } })).status).toBe(200);
    // A long forged value is just an address that is not allowed, not a server error.
    expectError(await viaProxy.get('/me', { token: 'rui_00000000_' + '0'.repeat(40), headers: { 'x-forwarded-for': 'x'.repeat(300) } }), 401, 'invalid_token');
  });

  test('over IPv6 loopback, ::1 lets the client in and IPv4 ranges do not', async () => {
    const port = await serveOn('::1');
    const ipv6 = (token: string) => new ApiClient(`http://[::1]:${port}`, token, h.services.contract);

    const v6 = await h.createCaller({ token: { allowedIps: ['::1'] } });
    const me = await ipv6(v6.token).get('/me');
    expect(me.status).toBe(200);
    expect(me.body.data.user.id).toBe(v6.userId);
    expect((await ipv6(v6.token).get('/repos')).status).toBe(200);
    // The same token over IPv4 loopback is refused.
    expectError(await v6.api.get('/me'), 403, 'ip_not_allowed');

    const v4 = await h.createCaller({ token: { allowedIps: ['127.0.0.0/8'] } });
    expectError(await ipv6(v4.token).get('/me'), 403, 'ip_not_allowed');
    const range = await h.createCaller({ token: { allowedIps: ['::1/128'] } });
    expect((await ipv6(range.token).get('/me')).status).toBe(200);
  });

  test('on a dual-stack socket, an IPv4 client (::ffff:127.0.0.1) matches 127.0.0.1', async () => {
    const port = await serveOn('::');
    const dual = (token: string) => new ApiClient(`http://127.0.0.1:${port}`, token, h.services.contract);
    const allowed = await h.createCaller({ token: { allowedIps: ['127.0.0.1'] } });
    expect((await dual(allowed.token).get('/me')).status).toBe(200);
    const refused = await h.createCaller({ token: { allowedIps: ['10.0.0.0/8'] } });
    expectError(await dual(refused.token).get('/me'), 403, 'ip_not_allowed');
  });
});

describe('CORS', () => {
  const UI = 'https://ui.example';
  const EVIL = 'https://evil.example';
  const CI = 'https://ci.example';
  const preflight = (origin: string, path = '/repos', extra: Record<string, string> = {}) =>
    rawRequest('OPTIONS', `${h.api.baseUrl}/api/v1${path}`, { origin, 'access-control-request-method': 'GET', ...extra });

  beforeAll(async () => {
    const res = await h.api.put('/settings/api_cors_allowed_origins', { value: [UI] });
    expect(res.status).toBe(200);
    expect(res.body.data.value).toEqual([UI]);
  });
  afterAll(async () => {
    await sql("delete from settings where key = 'api_cors_allowed_origins'");
  });

  test('a preflight from an allowed origin is 204 with the CORS headers', async () => {
    const res = await preflight(UI, '/repos', { 'access-control-request-headers': 'authorization, idempotency-key, x-dry-run' });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    expect(listHeader(res, 'access-control-allow-methods')).toEqual(expect.arrayContaining(['get', 'post', 'put', 'patch', 'delete']));
    expect(listHeader(res, 'access-control-allow-headers')).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'x-dry-run']),
    );
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(varyHeader(res)).toContain('origin');
  });

  test('a preflight from an origin outside the global list is 403 origin_not_allowed', async () => {
    const res = await preflight(EVIL);
    expectError(res, 403, 'origin_not_allowed');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    // Only an exact origin matches: scheme and port are part of it.
    expectError(await preflight('http://ui.example'), 403, 'origin_not_allowed');
    expectError(await preflight('https://ui.example:8443'), 403, 'origin_not_allowed');
  });

  test('an actual request from an allowed origin, with a token without its own origins, gets Access-Control-Allow-Origin', async () => {
    const caller = await h.createCaller();
    const res = await caller.api.request('GET', '/repos', { headers: { origin: UI } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    expect(varyHeader(res)).toContain('origin');
  });

  test('an actual request from another origin is 403 origin_not_allowed', async () => {
    const caller = await h.createCaller();
    const res = await caller.api.request('GET', '/repos', { headers: { origin: EVIL } });
    expectError(res, 403, 'origin_not_allowed');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  test("a token's allowed_origins narrow the global list for that token", async () => {
    // CI is not in the global list: a token cannot let a browser in that the server does not.
    const outside = await h.createCaller({ token: { allowedOrigins: [CI] } });
    expectError(await outside.api.request('GET', '/repos', { headers: { origin: CI } }), 403, 'origin_not_allowed');
    expect((await h.api.put('/settings/api_cors_allowed_origins', { value: [UI, CI] })).status).toBe(200);
    try {
      const caller = await h.createCaller({ token: { allowedOrigins: [CI] } });
      const ci = await caller.api.request('GET', '/repos', { headers: { origin: CI } });
      expect(ci.status).toBe(200);
      expect(ci.headers.get('access-control-allow-origin')).toBe(CI);
      // UI is allowed globally, but not by this token.
      expectError(await caller.api.request('GET', '/repos', { headers: { origin: UI } }), 403, 'origin_not_allowed');
      expectError(await caller.api.request('GET', '/repos', { headers: { origin: EVIL } }), 403, 'origin_not_allowed');
    } finally {
      expect((await h.api.put('/settings/api_cors_allowed_origins', { value: [UI] })).status).toBe(200);
    }
  });

  test('browsers from an allowed origin can read error answers too', async () => {
    const res = await h.api.request('GET', '/me', { token: null, headers: { origin: UI } });
    expectError(res, 401, 'missing_token');
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
  });

  test('requests without an Origin are unaffected by either list', async () => {
    for (const caller of [await h.createCaller(), await h.createCaller({ token: { allowedOrigins: [CI] } })]) {
      const res = await caller.api.get('/repos');
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  test('a global * allows any origin, and the answer names the origin', async () => {
    expect((await h.api.put('/settings/api_cors_allowed_origins', { value: ['*'] })).status).toBe(200);
    try {
      const pre = await preflight(EVIL);
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe(EVIL);
      const caller = await h.createCaller();
      const res = await caller.api.request('GET', '/repos', { headers: { origin: EVIL } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(EVIL);
    } finally {
      expect((await h.api.put('/settings/api_cors_allowed_origins', { value: [UI] })).status).toBe(200);
    }
    expectError(await preflight(EVIL), 403, 'origin_not_allowed');
  });
});

describe('the global switch (api_enabled)', () => {
  const enableDirectly = () => sql("update settings set value = 'true'::jsonb, updated_at = now() where key = 'api_enabled'");

  test('off: authenticated operations are 503 api_disabled (before authentication); public ones answer', async () => {
    const off = await h.api.put('/settings/api_enabled', { value: false });
    expect(off.status).toBe(200);
    expect(off.body.data).toMatchObject({ key: 'api_enabled', value: false });
    try {
      const [failuresBefore] = await sql<{ n: string }>("select count(*) as n from api_rate_hits where subject like 'auth-failure:%'");

      expectError(await h.api.get('/me'), 503, 'api_disabled');
      expectError(await h.api.get('/repos'), 503, 'api_disabled');
      expectError(await h.api.get('/me', { token: null }), 503, 'api_disabled');
      expectError(await h.api.get('/repos', { token: null }), 503, 'api_disabled');
      expectError(await h.api.get('/repos', { token: 'garbage' }), 503, 'api_disabled');
      // The API cannot switch itself back on.
      expectError(await h.api.put('/settings/api_enabled', { value: true }), 503, 'api_disabled');
      expect((await storedSetting('api_enabled'))?.value).toBe(false);
      // Refused before authentication: nothing was counted as a failed login.
      const [failuresAfter] = await sql<{ n: string }>("select count(*) as n from api_rate_hits where subject like 'auth-failure:%'");
      expect(failuresAfter?.n).toBe(failuresBefore?.n);

      const anonymous = h.api.withToken(null);
      const health = await anonymous.get('/health');
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('ok');
      const document = await anonymous.get('/openapi.json');
      expect(document.status).toBe(200);
      expect(document.body.openapi).toMatch(/^3\./);
      for (const path of ['/docs', '/swagger']) {
        const page = await anonymous.get(path);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      }
    } finally {
      await enableDirectly();
    }
    const me = await h.api.get('/me');
    expect(me.status).toBe(200);
    expect(me.body.data.user.username).toBe('admin');
    expect((await h.api.get('/repos')).status).toBe(200);
  });
});

describe('the settings routes', () => {
  const KEYS = [
    'api_cors_allowed_origins',
    'api_default_rate_limit_per_minute',
    'api_default_token_lifetime_days',
    'api_enabled',
    'api_idempotency_retention_hours',
    'api_log_retention_days',
    'api_webhook_store_response_body_debug',
    'app_name',
    'app_url',
    'cron_run_minute',
    'hook_allowed_commands',
    'integrity_check_day',
    'integrity_check_enabled',
    'integrity_check_hour',
    'maintenance_vacuum_day',
    'maintenance_vacuum_enabled',
    'maintenance_vacuum_hour',
    'notification_failure_channels',
    'notification_retention_days',
    'notification_success_channels',
    'notify_discord_webhook_url',
    'notify_email_from',
    'notify_email_smtp_host',
    'notify_email_smtp_password',
    'notify_email_smtp_port',
    'notify_email_smtp_require_starttls',
    'notify_email_smtp_tls',
    'notify_email_smtp_user',
    'notify_email_to',
    'notify_gotify_token',
    'notify_gotify_url',
    'notify_ntfy_token',
    'notify_ntfy_url',
    'notify_slack_webhook_url',
    'notify_teams_webhook_url',
    'notify_telegram_api_url',
    'notify_telegram_bot_token',
    'notify_telegram_chat_id',
    'notify_webhook_token',
    'notify_webhook_url',
    'restore_managed_local_root',
    'restore_managed_remote_root',
    'restore_original_allowed_paths',
    'restore_original_global_enabled',
    'run_history_retention_days',
    'schedule_absence_grace_minutes',
    'server_timezone',
    'timezone',
    'webhook_allow_private_targets',
    'webhook_retry_hours',
    'webhook_retry_initial_seconds',
    'webhook_timeout_seconds',
    'weekly_report_day',
    'weekly_report_enabled',
    'weekly_report_hour',
  ];

  test('the list holds every setting ordered by key, paginated', async () => {
    const total = KEYS.length;
    const pages = Math.ceil(total / 6);
    const all = await h.api.get('/settings?per_page=100');
    expect(all.status).toBe(200);
    expect(all.body.data.map((s: { key: string }) => s.key)).toEqual(KEYS);
    expect(all.body.meta).toEqual({ page: 1, per_page: 100, total, total_pages: 1 });
    expect((await h.api.get('/settings')).body.meta).toEqual({ page: 1, per_page: 50, total, total_pages: Math.ceil(total / 50) });

    const page = await h.api.get('/settings?page=2&per_page=6');
    expect(page.status).toBe(200);
    expect(page.body.data.map((s: { key: string }) => s.key)).toEqual(KEYS.slice(6, 12));
    expect(page.body.meta).toEqual({ page: 2, per_page: 6, total, total_pages: pages });

    const last = await h.api.get(`/settings?page=${pages}&per_page=6`);
    expect(last.body.data.map((s: { key: string }) => s.key)).toEqual(KEYS.slice((pages - 1) * 6));
    const beyond = await h.api.get(`/settings?page=${pages + 1}&per_page=6`);
    expect(beyond.status).toBe(200);
    expect(beyond.body.data).toEqual([]);
    expect(beyond.body.meta.total).toBe(total);
  });

  test('a setting never changed shows its default and updated_at null', async () => {
    const res = await h.api.get('/settings/cron_run_minute');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ key: 'cron_run_minute', value: 0, type: 'integer', description: expect.any(String), default: 0, updated_at: null });
    const list = await h.api.get('/settings');
    expect(list.body.data.find((s: { key: string }) => s.key === 'app_name')).toMatchObject({
      value: 'Backup Control Plane', default: 'Backup Control Plane', type: 'string', updated_at: null,
    });
    expect(list.body.data.find((s: { key: string }) => s.key === 'api_enabled')).toMatchObject({ type: 'boolean', default: true });
  });

  test('a value of the wrong type or out of range is 422 naming value, and nothing is stored', async () => {
    const cases: [string, unknown][] = [
      ['cron_run_minute', 60],
      ['cron_run_minute', -1],
      ['cron_run_minute', 'five'],
      ['cron_run_minute', 1.5],
      ['api_cors_allowed_origins', ['ftp://x']],
      ['api_cors_allowed_origins', 'https://ui.example'],
      ['api_enabled', 'yes'],
      ['app_name', 42],
      ['app_url', 'not a url'],
      ['timezone', 'Mars/Olympus_Mons'],
      ['weekly_report_day', 8],
      ['weekly_report_hour', 24],
    ];
    for (const [key, value] of cases) {
      // api_enabled was stored by the switch test above; the others were never changed.
      const before = await storedSetting(key);
      expect({ key, value: before?.value }).toEqual({ key, value: key === 'api_enabled' ? true : undefined });
      const res = await h.api.put(`/settings/${key}`, { value });
      expect({ key, value, status: res.status }).toEqual({ key, value, status: 422 });
      expectFieldError(res, 'value');
      expect({ key, stored: await storedSetting(key) }).toEqual({ key, stored: before });
    }
    const after = await h.api.get('/settings/cron_run_minute');
    expect(after.body.data).toMatchObject({ value: 0, updated_at: null });
  });

  test('a valid value is stored and read back (the changes the refusals above did not make)', async () => {
    const put = await h.api.put('/settings/cron_run_minute', { value: 15 });
    expect(put.status).toBe(200);
    expect(put.body.data).toMatchObject({ key: 'cron_run_minute', value: 15, default: 0, type: 'integer' });
    expect(put.body.data.updated_at).toMatch(ISO);
    const get = await h.api.get('/settings/cron_run_minute');
    expect(get.body.data).toMatchObject({ value: 15, updated_at: put.body.data.updated_at });
    expect((await storedSetting('cron_run_minute'))?.value).toBe(15);

    const origins = await h.api.put('/settings/app_url', { value: 'https://backups.example:8443/base' });
    expect(origins.status).toBe(200);
    expect((await storedSetting('app_url'))?.value).toBe('https://backups.example:8443/base');
  });

  test('an unknown key is 404 unknown_setting, for reads and writes', async () => {
    expectError(await h.api.get('/settings/no_such_setting'), 404, 'unknown_setting');
    expectError(await h.api.put('/settings/no_such_setting', { value: 1 }), 404, 'unknown_setting');
    expect(await storedSetting('no_such_setting')).toBeUndefined();
  });

  test('X-Dry-Run on PUT answers dry_run and changes nothing', async () => {
    for (const flag of ['1', 'true']) {
      const res = await h.api.put('/settings/app_name', { value: 'Dry Plane' }, { headers: { 'x-dry-run': flag } });
      expect(res.status).toBe(200);
      expect(res.body.data.dry_run).toBe(true);
    }
    expect(await storedSetting('app_name')).toBeUndefined();
    expect((await h.api.get('/settings/app_name')).body.data).toMatchObject({ value: 'Backup Control Plane', updated_at: null });
    // A dry run still validates.
    expectFieldError(await h.api.put('/settings/cron_run_minute', { value: 60 }, { headers: { 'x-dry-run': '1' } }), 'value');
  });

  test('a token without settings:write is 403 insufficient_scope on PUT; with settings:read it reads', async () => {
    const token = await h.createToken({ scopes: ['settings:read'] });
    const put = await h.api.put('/settings/app_name', { value: 'Not Allowed' }, { token });
    expectError(put, 403, 'insufficient_scope', { required_scope: 'settings:write' });
    expect(await storedSetting('app_name')).toBeUndefined();
    expect((await h.api.get('/settings/app_name', { token })).status).toBe(200);
    expect((await h.api.get('/settings', { token })).status).toBe(200);

    const none = await h.createToken({ scopes: ['me:read'] });
    expectError(await h.api.get('/settings', { token: none }), 403, 'insufficient_scope', { required_scope: 'settings:read' });
    expectError(await h.api.get('/settings/app_name', { token: none }), 403, 'insufficient_scope', { required_scope: 'settings:read' });
  });
});
