import { gzipSync } from 'node:zlib';
import type { ApiResponse } from '../support/api-client';
import { startHarness, type Harness } from '../support/harness';
import { expectError, expectFieldError, unique } from '../support/expectations';

/**
 * Bad input on write operations: malformed JSON, bodies that are not JSON, oversized bodies,
 * unknown fields, wrong types and out-of-range pagination are all answered with an error
 * envelope (no stack trace), and none of them changes anything.
 */
let h: Harness;
let repoId: number;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const repo = await h.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/backups/${unique()}`, password: `pw-${unique()}` });
  expect(repo.status).toBe(201);
  repoId = repo.body.data.id;
});
afterAll(async () => {
  await h?.stop();
});

const SETTING = 'app_name';

interface WriteOperation {
  label: string;
  method: 'POST' | 'PATCH' | 'PUT';
  path: () => string;
  /** The table a successful request writes to. */
  table: string;
  /** A request the operation accepts (used to prove the "nothing changed" checks can fail). */
  valid: () => Record<string, unknown>;
  /** A body whose fields have the wrong JSON types, and the fields each error must name. */
  wrongTypes: () => { body: Record<string, unknown>; fields: string[] };
  /** Reads the resource a PATCH or PUT would change (null for creations). */
  resource?: () => Promise<unknown>;
}

const operations: WriteOperation[] = [
  {
    label: 'POST /repos',
    method: 'POST',
    path: () => '/repos',
    table: 'repos',
    valid: () => ({ name: `repo-${unique()}`, path: `/srv/backups/${unique()}`, password: `pw-${unique()}` }),
    wrongTypes: () => ({ body: { name: 123, path: 456, password: 'pw', alert_hours: 'x' }, fields: ['name', 'path', 'alert_hours'] }),
  },
  {
    label: 'PATCH /repos/{id}',
    method: 'PATCH',
    path: () => `/repos/${repoId}`,
    table: 'repos',
    valid: () => ({ description: `changed ${unique()}` }),
    wrongTypes: () => ({ body: { name: 123, alert_hours: 'x', notify_email: 5 }, fields: ['name', 'alert_hours', 'notify_email'] }),
    resource: async () => (await h.api.get(`/repos/${repoId}`)).body.data,
  },
  {
    label: 'POST /hosts',
    method: 'POST',
    path: () => '/hosts',
    table: 'hosts',
    valid: () => ({ name: `host-${unique()}`, hostname: 'backup.example.internal', port: 2222 }),
    wrongTypes: () => ({ body: { name: 123, hostname: 'backup.example.internal', port: 'x' }, fields: ['name', 'port'] }),
  },
  {
    label: 'POST /backup-jobs',
    method: 'POST',
    path: () => '/backup-jobs',
    table: 'backup_jobs',
    valid: () => ({ name: `job-${unique()}`, repo_id: repoId, source_paths: ['/etc'] }),
    wrongTypes: () => ({ body: { name: 123, repo_id: 'x', source_paths: '/etc' }, fields: ['name', 'repo_id', 'source_paths'] }),
  },
  {
    label: 'POST /api-tokens',
    method: 'POST',
    path: () => '/api-tokens',
    table: 'api_tokens',
    valid: () => ({ name: `token-${unique()}`, scopes: ['repos:read'] }),
    wrongTypes: () => ({ body: { name: 123, scopes: 'repos:read', read_only: 'yes' }, fields: ['name', 'scopes', 'read_only'] }),
  },
  {
    label: `PUT /settings/${SETTING}`,
    method: 'PUT',
    path: () => `/settings/${SETTING}`,
    table: 'settings',
    valid: () => ({ value: `Control plane ${unique()}` }),
    wrongTypes: () => ({ body: { value: { name: 'x' } }, fields: ['value'] }),
    resource: async () => (await h.api.get(`/settings/${SETTING}`)).body.data,
  },
];

const rowCount = (table: string) => h.count(table);

/** What a bad request must leave alone: the table's row count and, for updates, the resource. */
async function snapshot(op: WriteOperation): Promise<{ rows: number; resource: unknown }> {
  return { rows: await rowCount(op.table), resource: op.resource ? await op.resource() : null };
}

/** Sends a raw body with exactly these headers (plus the admin token). */
function send(op: WriteOperation, body: string, contentType: string): Promise<ApiResponse> {
  return h.api.request(op.method, op.path(), { body, headers: { 'content-type': contentType } });
}

const MALFORMED_JSON = ['{"name": "x", "path": ', "{'name': 'single quotes'}", '{"name": "x",}', '{name: "x"}', 'nul', '[1, 2', '{"a": 1}}', '\u0000'];

describe.each(operations)('$label', (op) => {
  test('malformed JSON is 400 invalid_json and changes nothing', async () => {
    const before = await snapshot(op);
    for (const body of MALFORMED_JSON) {
      const res = await send(op, body, 'application/json');
      expectError(res, 400, 'invalid_json');
    }
    expect(await snapshot(op)).toEqual(before);
  });

  test('a JSON document that is not an object is rejected and changes nothing', async () => {
    const before = await snapshot(op);
    // Bare scalars are not accepted as bodies at all; arrays parse, and fail the schema.
    for (const body of ['"a string"', '42', 'true', 'null']) expectError(await send(op, body, 'application/json'), 400, 'invalid_json');
    for (const body of ['[]', JSON.stringify([op.valid()])]) expectFieldError(await send(op, body, 'application/json'), 'body');
    expect(await snapshot(op)).toEqual(before);
  });

  test('a valid JSON body under another content type is 400 invalid_json and changes nothing', async () => {
    const before = await snapshot(op);
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'application/merge-patch+json', 'application/octet-stream']) {
      const res = await send(op, JSON.stringify(op.valid()), type);
      expect({ type, status: res.status, code: res.body?.error?.code }).toEqual({ type, status: 400, code: 'invalid_json' });
      expectError(res, 400, 'invalid_json');
    }
    expect(await snapshot(op)).toEqual(before);
  });

  test('a body without any Content-Type is 400 invalid_json and changes nothing', async () => {
    const before = await snapshot(op);
    // fetch adds no Content-Type for a byte body; the harness client always sends one.
    const response = await fetch(`${h.api.baseUrl}/api/v1${op.path()}`, {
      method: op.method,
      headers: { authorization: `Bearer ${h.adminToken}` },
      body: new TextEncoder().encode(JSON.stringify(op.valid())),
    });
    const text = await response.text();
    expectError({ status: response.status, headers: response.headers, body: JSON.parse(text), text }, 400, 'invalid_json');
    expect(await snapshot(op)).toEqual(before);
  });

  test('form-encoded and multipart bodies are 400 invalid_json and change nothing', async () => {
    const before = await snapshot(op);
    const form = new URLSearchParams(Object.entries(op.valid()).map(([k, v]): [string, string] => [k, String(v)])).toString();
    expectError(await send(op, form, 'application/x-www-form-urlencoded'), 400, 'invalid_json');
    // Even when the form happens to hold JSON text.
    expectError(await send(op, JSON.stringify(op.valid()), 'application/x-www-form-urlencoded'), 400, 'invalid_json');
    const multipart = Object.entries(op.valid())
      .map(([k, v]) => `--XBOUNDARY\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${String(v)}\r\n`)
      .join('') + '--XBOUNDARY--\r\n';
    expectError(await send(op, multipart, 'multipart/form-data; boundary=XBOUNDARY'), 400, 'invalid_json');
    expect(await snapshot(op)).toEqual(before);
  });

  test('a 2 MB body is refused with 400 invalid_json (no 413 in the contract) and changes nothing', async () => {
    const before = await snapshot(op);
    const res = await h.api.request(op.method, op.path(), { body: { ...op.valid(), description: 'x'.repeat(2 * 1024 * 1024) } });
    expectError(res, 400, 'invalid_json');
    expect(res.text.length).toBeLessThan(2000);
    expect(await snapshot(op)).toEqual(before);

    // Under the 1 MB limit the same body is parsed, and only then refused for its content.
    expectFieldError(await h.api.request(op.method, op.path(), { body: { ...op.valid(), description: 'x'.repeat(900 * 1000) } }), 'description');
    expect(await snapshot(op)).toEqual(before);
  });

  test('unknown fields are 422 validation_error naming each unknown field, and change nothing', async () => {
    const before = await snapshot(op);
    const one = await h.api.request(op.method, op.path(), { body: { ...op.valid(), unexpected_field: 1 } });
    expectFieldError(one, 'unexpected_field');

    const two = await h.api.request(op.method, op.path(), { body: { ...op.valid(), colour: 'blue', nested: { a: 1 } } });
    expectFieldError(two, 'colour');
    expectFieldError(two, 'nested');
    expect(await snapshot(op)).toEqual(before);
  });

  test('fields of the wrong type are 422 validation_error naming each of them, and change nothing', async () => {
    const before = await snapshot(op);
    const { body, fields } = op.wrongTypes();
    const res = await h.api.request(op.method, op.path(), { body });
    expectError(res, 422, 'validation_error');
    const named = res.body.error.fields.map((f: { field: string }) => f.field);
    expect(named).toEqual(expect.arrayContaining(fields));
    for (const field of res.body.error.fields) expect(field.message).toEqual(expect.any(String));
    expect(await snapshot(op)).toEqual(before);
  });

  test('the valid request the bad ones were derived from does change something', async () => {
    // Guards the "changes nothing" checks above: they would pass trivially if the write never worked.
    const before = await snapshot(op);
    const res = await h.api.request(op.method, op.path(), { body: op.valid() });
    expect(res.status).toBe(op.method === 'POST' ? 201 : 200);
    const after = await snapshot(op);
    if (op.resource) expect(after.resource).not.toEqual(before.resource);
    else expect(after.rows).toBe(before.rows + 1);
  });
});

describe('compressed bodies', () => {
  test('a gzip body that inflates beyond the limit is 400 invalid_json and creates nothing', async () => {
    const before = await rowCount('repos');
    const huge = gzipSync(Buffer.from(JSON.stringify({ name: `repo-${unique()}`, path: `/srv/backups/${unique()}`, password: 'pw', description: ' '.repeat(20 * 1024 * 1024) })));
    expect(huge.length).toBeLessThan(1024 * 1024);
    const response = await fetch(`${h.api.baseUrl}/api/v1/repos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: huge,
    });
    const text = await response.text();
    expectError({ status: response.status, headers: response.headers, body: JSON.parse(text), text }, 400, 'invalid_json');
    expect(await rowCount('repos')).toBe(before);
  });
});

describe('specific wrong types', () => {
  test('name: 123 and port: "x" on POST /hosts name both fields; nothing is coerced', async () => {
    const before = await rowCount('hosts');
    const res = await h.api.post('/hosts', { name: 123, hostname: 'backup.example.internal', port: 'x' });
    expectFieldError(res, 'name');
    expectFieldError(res, 'port');
    // A numeric string is still a string: the body is not coerced.
    expectFieldError(await h.api.post('/hosts', { name: `host-${unique()}`, hostname: 'backup.example.internal', port: '22' }), 'port');
    expectFieldError(await h.api.post('/hosts', { name: `host-${unique()}`, hostname: 'backup.example.internal', port: true }), 'port');
    expectFieldError(await h.api.post('/hosts', { name: null, hostname: 'backup.example.internal' }), 'name');
    expect(await rowCount('hosts')).toBe(before);
  });

  test('a setting value of another type than the key\'s is 422 naming value', async () => {
    const before = (await h.api.get(`/settings/${SETTING}`)).body.data;
    expectFieldError(await h.api.put(`/settings/${SETTING}`, { value: 123 }), 'value');
    expectFieldError(await h.api.put(`/settings/${SETTING}`, { value: true }), 'value');
    expectFieldError(await h.api.put('/settings/api_log_retention_days', { value: 'thirty' }), 'value');
    expectFieldError(await h.api.put(`/settings/${SETTING}`, {}), 'value');
    expect((await h.api.get(`/settings/${SETTING}`)).body.data).toEqual(before);
  });
});

describe('text and nesting no database or serialiser can take', () => {
  test('control characters in a query parameter, lone surrogates and deep nesting are 422 naming the field', async () => {
    const repo = await h.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/bad/${unique()}`, password: 'pw' });
    await h.sql('update repos set snapshots_refreshed_at = now() where id = ?', [repo.body.data.id]);
    expectFieldError(await h.api.get(`/repos/${repo.body.data.id}/snapshots?host=%00`), 'host');
    expectFieldError(await h.api.get(`/repos/${repo.body.data.id}/snapshots?path=%00x`), 'path');
    const before = await h.api.get(`/repos/${repo.body.data.id}`);
    expectFieldError(await h.api.patch(`/repos/${repo.body.data.id}`, { description: 'lone \ud800 surrogate' }), 'description');
    expectFieldError(await h.api.patch(`/repos/${repo.body.data.id}`, { notification_policy: { '\udc00': 1 } }), 'notification_policy.\udc00');
    const deep = `{"notification_policy":${'{"d":'.repeat(5000)}{}${'}'.repeat(5000)}}`;
    const nested = await h.api.patch(`/repos/${repo.body.data.id}`, deep, { headers: { 'Idempotency-Key': `deep-${unique()}` } });
    expectError(nested, 422, 'validation_error');
    expect(nested.body.error.fields[0].message).toMatch(/nested/);
    expect((await h.api.get(`/repos/${repo.body.data.id}`)).body).toEqual(before.body);
  });

  test('times no database can store (a leap second, year 0) are 422 naming the parameter', async () => {
    expectFieldError(await h.api.get('/logs/api-tokens?since=0000-01-01T00:00:00Z'), 'since');
    expectFieldError(await h.api.get('/logs/api-tokens?until=9999-12-31T23:59:60Z'), 'until');
    expect((await h.api.get('/logs/api-tokens?since=0001-01-01T00:00:00Z')).status).toBe(200);
  });
});

describe('out-of-range pagination', () => {
  const LISTS = ['/repos', '/hosts', '/backup-jobs', '/api-tokens', '/settings', '/logs/api-tokens'];
  const CASES: Array<[string, string[]]> = [
    ['page=0', ['page']],
    ['page=-1', ['page']],
    ['page=abc', ['page']],
    ['page=1.5', ['page']],
    ['per_page=0', ['per_page']],
    ['per_page=201', ['per_page']],
    ['per_page=-5', ['per_page']],
    ['per_page=abc', ['per_page']],
    ['page=0&per_page=0', ['page', 'per_page']],
    ['page=abc&per_page=201', ['page', 'per_page']],
  ];

  test.each(LISTS)('GET %s: bad page and per_page are 422 naming them', async (list) => {
    for (const [query, fields] of CASES) {
      const res = await h.api.get(`${list}?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 422 });
      for (const field of fields) expectFieldError(res, field);
    }
    // The bounds themselves are fine.
    const edge = await h.api.get(`${list}?page=1&per_page=200`);
    expect(edge.status).toBe(200);
    expect(edge.body.meta).toMatchObject({ page: 1, per_page: 200 });
    expect((await h.api.get(`${list}?per_page=1`)).body.meta).toMatchObject({ page: 1, per_page: 1 });
  });
});

describe('a body sent to an operation that takes none', () => {
  test('is 422 naming body and starts nothing; none, or {}, is fine', async () => {
    const runs = () => h.count('operation_runs', "kind = 'scheduler_task'");
    const before = await runs();
    for (const body of [{ x: 1 }, [], [1]]) expectFieldError(await h.api.post('/scheduler/tasks/weekly_report/run', body), 'body');
    // A bare string or number is not a JSON document this API reads, as everywhere.
    for (const body of ['text', 5]) expectError(await h.api.post('/scheduler/tasks/weekly_report/run', body), 400, 'invalid_json');
    expect(await runs()).toBe(before);
    expect((await h.api.post('/scheduler/tasks/weekly_report/run', {})).status).toBe(202);
    expect((await h.api.post('/scheduler/tasks/db_vacuum/run')).status).toBe(202);
    expect(await runs()).toBe(before + 2);
  });
});
