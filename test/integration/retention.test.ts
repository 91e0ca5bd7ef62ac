import { purgeExpiredApiRecords } from '../../api/retention';
import { startHarness, type Harness } from '../support/harness';

/** What the API keeps only for a while is deleted once its retention setting has passed. */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

const sql = <T>(query: string, params: unknown[] = []) => h.sql<T>(query, params);
const count = (table: string, where: string) => h.count(table, where);

test('audit entries, idempotency keys and rate-limit hits past their retention are purged; recent ones stay', async () => {
  const caller = await h.createCaller();
  await sql(`insert into api_token_logs (method, endpoint, status, latency_ms, created_at) values
    ('GET', '/old', 200, 1, now() - interval '31 days'), ('GET', '/recent', 200, 1, now() - interval '29 days')`);
  await sql(
    `insert into api_idempotency_keys (token_id, idempotency_key, fingerprint, method, endpoint, created_at) values
      (?, 'old', ?, 'POST', '/x', now() - interval '49 hours'), (?, 'recent', ?, 'POST', '/x', now() - interval '47 hours')`,
    [caller.tokenId, 'a'.repeat(64), caller.tokenId, 'b'.repeat(64)],
  );
  const now = Math.floor(Date.now() / 1000);
  await sql("insert into api_rate_hits (subject, second, hits) values ('token:purge', ?, 3), ('token:purge', ?, 2)", [now - 120, now - 5]);

  expect(await purgeExpiredApiRecords(h.services.orm.em.fork())).toEqual({ logs: 1, idempotencyKeys: 1, rateHits: 1 });
  expect(await count('api_token_logs', "endpoint in ('/old', '/recent')")).toBe(1);
  expect(await count('api_token_logs', "endpoint = '/recent'")).toBe(1);
  expect(await count('api_idempotency_keys', "idempotency_key = 'recent'")).toBe(1);
  expect(await count('api_rate_hits', "subject = 'token:purge'")).toBe(1);

  // A shorter retention applies at the next purge.
  expect((await h.api.put('/settings/api_log_retention_days', { value: 1 })).status).toBe(200);
  await purgeExpiredApiRecords(h.services.orm.em.fork());
  expect(await count('api_token_logs', "endpoint = '/recent'")).toBe(0);
});
