import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { startHarness, type Harness } from '../support/harness';

/**
 * The unauthenticated system surface: health, the contract as JSON, Swagger UI served from this
 * server, and the headers every response carries.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

const anonymous = () => h.api.withToken(null);
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * Swagger UI's static files are not API operations, so the contract-checking client cannot
 * fetch them (it requires an operation or an error envelope); they are fetched directly.
 */
async function fetchAsset(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${h.api.baseUrl}${path}`, { headers });
}

describe('GET /health', () => {
  test('answers {status: "ok", time} with the current time, not enveloped', async () => {
    const before = Date.now();
    const res = await anonymous().get('/health');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(['status', 'time']);
    expect(res.body.status).toBe('ok');
    expect(res.body.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
    const time = Date.parse(res.body.time);
    expect(time).toBeGreaterThanOrEqual(before - 1000);
    expect(time).toBeLessThanOrEqual(Date.now() + 1000);
  });
});

describe('GET /openapi.json', () => {
  test('is the contract of openapi.yaml, as JSON, cacheable for 5 minutes', async () => {
    const res = await anonymous().get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');

    const yaml = parse(readFileSync(resolve(__dirname, '..', '..', 'openapi.yaml'), 'utf8'));
    expect(res.body).toEqual(yaml);
    expect(res.body.servers).toEqual([expect.objectContaining({ url: '/api/v1' })]);

    const operations = Object.values(res.body.paths as Record<string, Record<string, { operationId?: string }>>).flatMap((item) =>
      Object.entries(item)
        .filter(([method]) => HTTP_METHODS.includes(method))
        .map(([, operation]) => operation.operationId),
    );
    // The 83 routes of the reference, health, the document, the two doc pages, and 6 extensions
    // (backup runs, repository runs, webhook redelivery, metrics).
    expect(operations).toHaveLength(93);
    expect(new Set(operations).size).toBe(93);
    expect(operations.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
  });

  test('serves the same document twice (nothing mutates it between requests)', async () => {
    const first = await anonymous().get('/openapi.json');
    const second = await anonymous().get('/openapi.json');
    expect(second.text).toBe(first.text);
  });
});

describe('Swagger UI', () => {
  const ASSET_TYPES: Record<string, RegExp> = {
    css: /^text\/css/,
    js: /^(application|text)\/javascript/,
    png: /^image\/png$/,
  };

  test.each(['/docs', '/swagger'])('%s is a Swagger UI page whose assets come from this server', async (path) => {
    const res = await anonymous().get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = res.text;
    expect(html).toMatch(/<html/i);
    expect(html).toContain('SwaggerUIBundle(');
    expect(html).toContain('/api/v1/openapi.json');

    // Nothing is loaded from another origin: no absolute or protocol-relative URL at all.
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']\/\//i);

    const scripts = [...html.matchAll(/<script[^>]*\ssrc\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1] as string);
    const styles = [...html.matchAll(/<link[^>]*rel\s*=\s*["']stylesheet["'][^>]*>/gi)].map((m) => /href\s*=\s*["']([^"']+)["']/i.exec(m[0])?.[1] as string);
    const others = [...html.matchAll(/<link[^>]*\shref\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1] as string);
    expect(scripts.length).toBeGreaterThanOrEqual(1);
    expect(styles.length).toBeGreaterThanOrEqual(1);
    expect(scripts.some((s) => /swagger-ui-bundle\.js$/.test(s))).toBe(true);
    expect(styles.some((s) => /swagger-ui\.css$/.test(s))).toBe(true);

    for (const asset of new Set([...scripts, ...styles, ...others])) {
      expect(asset).toMatch(/^\/api\/v1\/docs\/assets\/[^/]+$/);
      const file = await fetchAsset(asset);
      expect({ asset, status: file.status }).toEqual({ asset, status: 200 });
      const extension = asset.split('.').pop() as string;
      expect(file.headers.get('content-type')).toMatch(ASSET_TYPES[extension] as RegExp);
      expect((await file.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
  });

  test('an unknown asset is a 404 error envelope, not a file', async () => {
    const res = await fetchAsset('/api/v1/docs/assets/package.json');
    expect(res.status).toBe(404);
    const body = await res.json();
    expect(body).toMatchObject({ data: null, error: { code: 'not_found' } });
    const traversal = await fetchAsset('/api/v1/docs/assets/..%2F..%2Fpackage.json');
    expect(traversal.status).toBe(404);
  });
});

describe('response headers', () => {
  const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

  test('every response carries X-Request-Id and X-Content-Type-Options: nosniff', async () => {
    const responses: Array<[string, { status: number; headers: Headers }]> = [
      ['health', await anonymous().get('/health')],
      ['openapi.json', await anonymous().get('/openapi.json')],
      ['docs', await anonymous().get('/docs')],
      ['asset', await fetchAsset('/api/v1/docs/assets/swagger-ui.css')],
      ['me 200', await h.api.get('/me')],
      ['list 200', await h.api.get('/repos')],
      ['401', await anonymous().get('/me')],
      ['403', await h.api.get('/repos', { token: await h.createToken({ scopes: ['me:read'] }) })],
      ['404 route', await h.api.get('/nowhere')],
      ['404 resource', await h.api.get('/repos/999999')],
      ['405', await h.api.put('/repos', {})],
      ['400', await h.api.post('/repos', '{')],
      ['422', await h.api.post('/repos', {})],
    ];
    const ids = new Set<string>();
    for (const [what, res] of responses) {
      expect({ what, id: res.headers.get('x-request-id') }).toEqual({ what, id: expect.stringMatching(REQUEST_ID) });
      expect({ what, nosniff: res.headers.get('x-content-type-options') }).toEqual({ what, nosniff: 'nosniff' });
      ids.add(res.headers.get('x-request-id') as string);
    }
    // Generated ids are unique per request.
    expect(ids.size).toBe(responses.length);
  });

  test('a given X-Request-Id is echoed back, on success and on error', async () => {
    const ok = await h.api.get('/me', { headers: { 'x-request-id': 'client-trace-0001' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-request-id')).toBe('client-trace-0001');

    const failed = await anonymous().get('/me', { headers: { 'x-request-id': 'client-trace-0002' } });
    expect(failed.status).toBe(401);
    expect(failed.headers.get('x-request-id')).toBe('client-trace-0002');

    const health = await anonymous().get('/health', { headers: { 'x-request-id': 'abc:DEF.123-x_y' } });
    expect(health.headers.get('x-request-id')).toBe('abc:DEF.123-x_y');
  });

  test('JSON responses are declared as UTF-8 JSON', async () => {
    for (const res of [await h.api.get('/me'), await anonymous().get('/me'), await h.api.get('/nowhere')]) {
      expect(res.headers.get('content-type')).toMatch(/^application\/json;\s*charset=utf-8$/i);
    }
  });
});
