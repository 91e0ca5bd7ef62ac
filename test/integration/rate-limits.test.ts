import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { ApiClient, type ApiResponse } from '../support/api-client';
import { expectError } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';

/**
 * Rate limits as a client sees them: the per-token limit (headers, 429, the sliding minute, shared by
 * every API process through Postgres) and the per-address limit of failed authentications.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

const nowSeconds = () => Math.floor(Date.now() / 1000);
const unknownToken = () => `rui_${randomBytes(4).toString('hex')}_${randomBytes(20).toString('hex')}`;

const sql = <T = Record<string, unknown>>(query: string, params: unknown[] = []) => h.sql<T>(query, params);

/** The hits stored for `subject` (all rows, expired or not). */
async function storedHits(subject: string): Promise<number> {
  const [row] = await sql<{ hits: string }>('select coalesce(sum(hits), 0) as hits from api_rate_hits where subject = ?', [subject]);
  return Number(row?.hits ?? 0);
}

/** Moves every stored hit of `subject` `seconds` into the past (instead of waiting). */
async function ageHits(subject: string, seconds: number): Promise<void> {
  await sql('update api_rate_hits set second = second - ? where subject = ?', [seconds, subject]);
}

async function oldestStoredSecond(subject: string): Promise<number> {
  const [row] = await sql<{ oldest: string }>('select min(second) as oldest from api_rate_hits where subject = ?', [subject]);
  return Number(row?.oldest);
}

const header = (res: ApiResponse, name: string) => res.headers.get(name);
const intHeader = (res: ApiResponse, name: string) => {
  const value = res.headers.get(name);
  expect(value).toMatch(/^\d+$/);
  return Number(value);
};

/** A 429 rate_limited with the envelope, Retry-After in 1..60 and the same value in the body. */
function expectRateLimited(res: ApiResponse): number {
  expectError(res, 429, 'rate_limited');
  const retryAfter = intHeader(res, 'retry-after');
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(res.body.error.retry_after).toBe(retryAfter);
  return retryAfter;
}

/** A success carrying the token's limit headers with `remaining` left. */
function expectAllowed(res: ApiResponse, limit: number, remaining: number): void {
  expect({ status: res.status, limit: header(res, 'x-ratelimit-limit'), remaining: header(res, 'x-ratelimit-remaining') })
    .toEqual({ status: 200, limit: String(limit), remaining: String(remaining) });
  expect(header(res, 'retry-after')).toBeNull();
}

describe('the per-token limit', () => {
  const LIMIT = 5;

  test('responses carry the limit, the remaining count and the reset time; request N+1 is 429', async () => {
    const caller = await h.createCaller({ token: { rateLimitPerMinute: LIMIT } });
    for (let i = 1; i <= LIMIT; i++) {
      const res = await caller.api.get('/me');
      const now = nowSeconds();
      expectAllowed(res, LIMIT, LIMIT - i);
      const reset = intHeader(res, 'x-ratelimit-reset');
      // Unix seconds at which the oldest counted hit leaves the minute: within the next 60 s.
      expect(reset).toBeGreaterThan(now);
      expect(reset).toBeLessThanOrEqual(now + 60);
    }
    expect(await storedHits(`token:${caller.tokenId}`)).toBe(LIMIT);

    const refused = await caller.api.get('/me');
    const now = nowSeconds();
    expectRateLimited(refused);
    expect(header(refused, 'x-ratelimit-limit')).toBe(String(LIMIT));
    expect(header(refused, 'x-ratelimit-remaining')).toBe('0');
    const reset = intHeader(refused, 'x-ratelimit-reset');
    expect(reset).toBeGreaterThan(now);
    expect(reset).toBeLessThanOrEqual(now + 60);
    // Every operation of the token is limited, not only the one that used the allowance up.
    expectRateLimited(await caller.api.get('/repos'));
  });

  test('Retry-After and X-RateLimit-Reset follow the oldest counted hit', async () => {
    const caller = await h.createCaller({ token: { rateLimitPerMinute: LIMIT } });
    const subject = `token:${caller.tokenId}`;
    for (let i = 0; i < LIMIT; i++) expect((await caller.api.get('/me')).status).toBe(200);
    await ageHits(subject, 45);
    const oldest = await oldestStoredSecond(subject);

    const refused = await caller.api.get('/me');
    const retryAfter = expectRateLimited(refused);
    expect(intHeader(refused, 'x-ratelimit-reset')).toBe(oldest + 60);
    // The oldest hit is 45 s (or a little more) old: it leaves the window in at most 15 s.
    expect(retryAfter).toBeLessThanOrEqual(15);
  });

  test('refused requests do not use up the allowance: once the counted hits leave the minute, requests pass', async () => {
    const caller = await h.createCaller({ token: { rateLimitPerMinute: LIMIT } });
    const subject = `token:${caller.tokenId}`;
    for (let i = 1; i <= LIMIT; i++) expectAllowed(await caller.api.get('/me'), LIMIT, LIMIT - i);

    // 40 s later the allowed hits still count...
    await ageHits(subject, 40);
    for (let i = 0; i < 4; i++) expectRateLimited(await caller.api.get('/me'));
    expect(await storedHits(subject)).toBe(LIMIT);

    // ...21 s after that they have left the minute; the refused requests (21 s old) would still be in it.
    await ageHits(subject, 21);
    for (let i = 1; i <= LIMIT; i++) expectAllowed(await caller.api.get('/me'), LIMIT, LIMIT - i);
    expectRateLimited(await caller.api.get('/me'));
  });

  test('another token is unaffected by a token that is limited', async () => {
    const limited = await h.createCaller({ token: { rateLimitPerMinute: LIMIT } });
    const other = await h.createCaller({ token: { rateLimitPerMinute: LIMIT } });
    for (let i = 0; i < LIMIT; i++) expect((await limited.api.get('/me')).status).toBe(200);
    expectRateLimited(await limited.api.get('/me'));

    expectAllowed(await other.api.get('/me'), LIMIT, LIMIT - 1);
    expectAllowed(await other.api.get('/repos'), LIMIT, LIMIT - 2);
    expectRateLimited(await limited.api.get('/me'));
  });

  test('rate_limit_per_minute 0 means no limit and no X-RateLimit headers', async () => {
    const caller = await h.createCaller({ token: { rateLimitPerMinute: 0 } });
    for (let i = 0; i < 3 * LIMIT; i++) {
      const res = await caller.api.get(i % 2 ? '/me' : '/repos');
      expect(res.status).toBe(200);
      expect({
        limit: header(res, 'x-ratelimit-limit'),
        remaining: header(res, 'x-ratelimit-remaining'),
        reset: header(res, 'x-ratelimit-reset'),
        retryAfter: header(res, 'retry-after'),
      }).toEqual({ limit: null, remaining: null, reset: null, retryAfter: null });
    }
    expect(await storedHits(`token:${caller.tokenId}`)).toBe(0);
  });
});

describe('tokens minted by a limited token', () => {
  test('draw from its budget: minting tokens creates no capacity', async () => {
    const parent = await h.createCaller({ token: { scopes: ['api_tokens:write', 'me:read'], rateLimitPerMinute: 6 } });
    const mint = async () => {
      const res = await parent.api.post('/api-tokens', { name: `child-${randomBytes(3).toString('hex')}`, scopes: ['me:read'] });
      expect(res.status).toBe(201);
      expect(res.body.data.rate_limit_per_minute).toBe(6);
      return parent.api.withToken(res.body.data.secret);
    };
    const [first, second] = [await mint(), await mint()];
    const statuses = [];
    for (const api of [first, second, first, second, first, second, parent.api]) statuses.push((await api.get('/me')).status);
    // Two mints and four reads use the six; everything after is refused, whoever asks.
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429]);
  });

  test('an unlimited token\u2019s tokens have budgets of their own', async () => {
    const parent = await h.createCaller({ token: { scopes: ['api_tokens:write', 'me:read'], rateLimitPerMinute: 0 } });
    const res = await parent.api.post('/api-tokens', { name: 'own budget', scopes: ['me:read'], rate_limit_per_minute: 2 });
    const child = parent.api.withToken(res.body.data.secret);
    expect([(await child.get('/me')).status, (await child.get('/me')).status, (await child.get('/me')).status]).toEqual([200, 200, 429]);
    expect((await parent.api.get('/me')).status).toBe(200);
  });
});

describe('two API processes', () => {
  const ROOT = path.resolve(__dirname, '..', '..');
  const started: ChildProcess[] = [];

  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  /** `tsx api/server.ts` on a free loopback port, against the harness database; resolves once /health answers. */
  async function startApiProcess(): Promise<string> {
    const port = await freePort();
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['api/server.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: h.config.databaseUrl,
        SECRET_KEY: h.config.secretKey.toString('base64'),
        API_HOST: '127.0.0.1',
        API_PORT: String(port),
        TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS,
        TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const baseUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the API process exited (${child.exitCode ?? child.signalCode}):\n${output}`);
      try {
        const res = await fetch(`${baseUrl}/api/v1/health`);
        if (res.status === 200) return baseUrl;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`the API process on port ${port} did not answer /health:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  let first: string;
  let second: string;

  beforeAll(async () => {
    [first, second] = await Promise.all([startApiProcess(), startApiProcess()]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(
      started.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const escalate = setTimeout(() => child.kill('SIGKILL'), 15_000);
            child.once('exit', () => {
              clearTimeout(escalate);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }, 60_000);

  test('they share one limit: with 6 a minute, exactly 6 requests succeed across both and the 7th is 429 on either', async () => {
    const caller = await h.createCaller({ token: { rateLimitPerMinute: 6 } });
    const clients = [first, second].map((base) => new ApiClient(base, caller.token, h.services.contract));
    expect(new Set([first, second, h.api.baseUrl]).size).toBe(3);

    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await clients[i % 2]!.get('/me');
      statuses.push(res.status);
      if (res.status === 200) expect(header(res, 'x-ratelimit-remaining')).toBe(String(5 - i));
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);

    expectRateLimited(await clients[0]!.get('/me'));
    expectRateLimited(await clients[1]!.get('/me'));
    // The in-process harness server shares it too.
    expectRateLimited(await caller.api.get('/me'));
    expect(await storedHits(`token:${caller.tokenId}`)).toBe(6);
  });

  test('a concurrent burst split between them lets exactly 6 through', async () => {
    const caller = await h.createCaller({ token: { rateLimitPerMinute: 6 } });
    const clients = [first, second].map((base) => new ApiClient(base, caller.token, h.services.contract));
    const responses = await Promise.all(Array.from({ length: 24 }, (_, i) => clients[i % 2]!.get('/me')));
    const statuses = responses.map((res) => res.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(6);
    expect(statuses.filter((status) => status === 429)).toHaveLength(18);
    for (const res of responses) if (res.status === 429) expectRateLimited(res);
    expect(responses.filter((res) => res.status === 200).map((res) => header(res, 'x-ratelimit-remaining')).sort()).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(await storedHits(`token:${caller.tokenId}`)).toBe(6);
  });
});

describe('failed authentications, per client address', () => {
  const FAILURES = 30;
  const clearFailures = () => sql("delete from api_rate_hits where subject like 'auth-failure:%'");

  beforeEach(clearFailures);
  afterEach(clearFailures);

  test('30 failures a minute are 401, the next ones 429; a valid token still works', async () => {
    const caller = await h.createCaller();
    for (let i = 0; i < FAILURES; i++) {
      expectError(await h.api.get('/me', { token: unknownToken() }), 401, 'invalid_token');
    }
    expectRateLimited(await h.api.get('/me', { token: unknownToken() }));
    expectRateLimited(await h.api.get('/repos', { token: unknownToken() }));
    // A request without a token is a failed authentication too.
    expectRateLimited(await h.api.get('/me', { token: null }));

    // The limit is per client address, which a client cannot choose with forwarding headers.
    expectRateLimited(await h.api.get('/me', { token: unknownToken(), headers: { 'x-forwarded-for': '10.9.8.7', 'x-real-ip': '10.9.8.7' } }));

    const ok = await caller.api.get('/me');
    expect(ok.status).toBe(200);
    expect(ok.body.data.user.id).toBe(caller.userId);

    // The refused attempts did not count: only the 30 failures are stored.
    const [row] = await sql<{ hits: string }>("select coalesce(sum(hits), 0) as hits from api_rate_hits where subject like 'auth-failure:%'");
    expect(Number(row?.hits)).toBe(FAILURES);
  });

  test('once the failures leave the minute, a bad token is 401 again', async () => {
    for (let i = 0; i < FAILURES; i++) expect((await h.api.get('/me', { token: unknownToken() })).status).toBe(401);
    expectRateLimited(await h.api.get('/me', { token: unknownToken() }));
    await sql("update api_rate_hits set second = second - 61 where subject like 'auth-failure:%'");
    expectError(await h.api.get('/me', { token: unknownToken() }), 401, 'invalid_token');
  });
});
