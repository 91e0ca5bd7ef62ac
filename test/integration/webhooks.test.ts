import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';
import { signatureValid, timestampedSignatureValid, WebhookReceiver, type Received } from '../support/webhook-receiver';

/**
 * Webhooks against real HTTP receivers on loopback: what they receive (signed bytes, headers),
 * and how deliveries retry, recover, time out and stop. Events come from real API requests.
 */
let h: Harness;
const receivers: WebhookReceiver[] = [];

async function receiver(reply?: ConstructorParameters<typeof WebhookReceiver>[0], port = 0): Promise<WebhookReceiver> {
  const r = new WebhookReceiver(reply);
  await r.listen(port);
  receivers.push(r);
  return r;
}

async function webhook(url: string, events: string[] = ['repo.created']): Promise<{ id: number; secret: string }> {
  const res = await h.api.post('/webhooks', { name: `hook-${unique()}`, url, events });
  expect(res.status).toBe(201);
  return { id: res.body.data.id, secret: res.body.data.secret };
}

/** A repository created through the API: the `repo.created` event every test here waits for. */
async function createRepo(name = `repo-${unique()}`): Promise<{ id: number; name: string }> {
  const res = await h.api.post('/repos', { name, path: `/srv/webhooks/${unique()}`, password: 'pw' });
  expect(res.status).toBe(201);
  return res.body.data;
}

const deliveries = async (webhookId: number) => (await h.api.get(`/webhooks/${webhookId}/deliveries?per_page=200`)).body.data;
const bodyOf = (request: Received) => JSON.parse(request.raw.toString('utf8'));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  h = await startHarness();
  for (const [key, value] of [['webhook_allow_private_targets', true], ['webhook_retry_initial_seconds', 1], ['webhook_timeout_seconds', 2]] as const) {
    expect((await h.api.put(`/settings/${key}`, { value })).status).toBe(200);
  }
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await h?.stop();
});

describe('webhook records', () => {
  test('the secret is generated, shown once, never returned again, and rotated by PATCH', async () => {
    const created = await h.api.post('/webhooks', { name: 'ops', url: 'http://127.0.0.1:9/x', events: ['backup_job.failure', 'restore.failure'] });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ name: 'ops', events: ['backup_job.failure', 'restore.failure'], enabled: true, last_status: null });
    expect(created.body.data.secret).toMatch(/^[0-9a-f]{64}$/);
    const { id, secret } = created.body.data;
    const read = await h.api.get(`/webhooks/${id}`);
    expect(read.text).not.toContain(secret);
    expect(read.body.data.secret).toBeUndefined();
    const rotated = await h.api.patch(`/webhooks/${id}`, { secret: 'a-new-secret-of-enough-length', enabled: false });
    expect(rotated.body.data).toMatchObject({ enabled: false });
    expect(rotated.text).not.toContain('a-new-secret');
    expect((await h.api.get('/webhooks')).body.data.map((w: { id: number }) => w.id)).toContain(id);
    const events = (await h.api.get('/webhooks/events')).body.data.events;
    expect(events).toHaveLength(15);
    expect(events).toEqual(expect.arrayContaining(['backup_job.missed', 'copy_job.missed', 'report.weekly']));
    expect((await h.api.delete(`/webhooks/${id}`)).status).toBe(204);
    expectError(await h.api.get(`/webhooks/${id}`), 404, 'not_found');
  });

  test('a retried creation with the same Idempotency-Key never shows (or stores) the secret again', async () => {
    const body = { name: 'once', url: 'http://127.0.0.1:9/once', events: ['repo.deleted'] };
    const headers = { 'Idempotency-Key': `hook-${unique()}` };
    const first = await h.api.post('/webhooks', body, { headers });
    expect(first.status).toBe(201);
    const again = await h.api.post('/webhooks', body, { headers });
    expectError(again, 409, 'secret_not_replayable', { webhook_id: first.body.data.id });
    expect(again.text).not.toContain(first.body.data.secret);
    expect(JSON.stringify(await h.sql('select * from api_idempotency_keys'))).not.toContain(first.body.data.secret);
  });

  test('bad subscriptions and unsafe URLs are refused, and nothing is stored', async () => {
    const before = await h.count('webhooks');
    const base = { name: 'bad', url: 'https://hooks.example.org/x', events: ['repo.created'] };
    expect((await h.api.post('/webhooks', { ...base, events: [] })).status).toBe(422);
    expect((await h.api.post('/webhooks', { ...base, events: ['webhook.test'] })).status).toBe(422);
    expect((await h.api.post('/webhooks', { ...base, events: ['no.such.event'] })).status).toBe(422);
    await h.api.put('/settings/webhook_allow_private_targets', { value: false });
    try {
      for (const url of ['http://hooks.example.org/x', 'https://127.0.0.1/x', 'https://[::1]/x', 'https://10.1.2.3/x', 'https://hooks.example.org:8443/x', 'https://user:pw@hooks.example.org/x', 'https://localhost/x']) {
        expectFieldError(await h.api.post('/webhooks', { ...base, url }), 'url');
      }
    } finally {
      await h.api.put('/settings/webhook_allow_private_targets', { value: true });
    }
    expect(await h.count('webhooks')).toBe(before);
  });
});

describe('delivery', () => {
  test('the receiver gets the event signed over the exact bytes, with every header', async () => {
    const r = await receiver();
    const hook = await webhook(r.url);
    const repo = await createRepo(`dépôt "quoted" ünïcode ${unique()}`);
    await waitFor(async () => (r.received.length > 0 ? true : undefined), 'the delivery');
    const [request] = r.received as [Received];
    expect(signatureValid(request, hook.secret)).toBe(true);
    expect(timestampedSignatureValid(request, hook.secret)).toBe(true);
    expect(signatureValid(request, 'another secret')).toBe(false);
    expect(request.headers).toMatchObject({
      'content-type': 'application/json',
      'x-fulgurite-event': 'repo.created',
      'user-agent': expect.stringMatching(/^Fulgurite-Webhook\/1\.0 /),
      'x-fulgurite-delivery': expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(Math.abs(Number(request.headers['x-fulgurite-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    const body = bodyOf(request);
    expect(body).toEqual({ event: 'repo.created', created_at: expect.any(String), data: { id: repo.id, name: repo.name, path: expect.any(String) } });
    const [delivery] = await waitFor(async () => {
      const list = await deliveries(hook.id);
      return list[0]?.state === 'delivered' ? list : undefined;
    }, 'the delivery to be recorded');
    expect(delivery).toMatchObject({ event: 'repo.created', status: 200, attempts: 1, guid: request.headers['x-fulgurite-delivery'], workflow_id: `webhook-delivery-${delivery.id}` });
    expect(delivery.attempt_log).toEqual([{ attempt: 1, attempted_at: expect.any(String), status: 200, latency_ms: expect.any(Number), error: null }]);
    expect((await h.api.get(`/webhooks/${hook.id}`)).body.data).toMatchObject({ last_status: 200, last_error: null });
    // Only subscribed events: a repository deletion is not sent to this hook.
    await h.api.delete(`/repos/${repo.id}`);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(r.received).toHaveLength(1);
  });

  test('a receiver that is down, then fails, then recovers gets the event once it is back, under one delivery id', async () => {
    const port = await freePort();
    const hook = await webhook(`http://127.0.0.1:${port}/hook`);
    await createRepo();
    const list = await waitFor(async () => {
      const found = await deliveries(hook.id);
      return found[0]?.attempts >= 1 ? found : undefined;
    }, 'a first, failed attempt');
    expect(list[0]).toMatchObject({ state: 'retrying', status: 0, error: expect.stringMatching(/ECONNREFUSED/) });
    const r = await receiver((n) => (n === 0 ? { status: 500 } : { status: 204 }), port);
    const [delivered] = await waitFor(async () => {
      const found = await deliveries(hook.id);
      return found[0]?.state === 'delivered' ? found : undefined;
    }, 'the delivery after recovery', 60_000);
    expect(r.received).toHaveLength(2);
    expect(new Set(r.received.map((q) => q.headers['x-fulgurite-delivery']))).toEqual(new Set([delivered.guid]));
    expect(r.received[0]?.raw.equals(r.received[1]?.raw as Buffer)).toBe(true);
    expect(delivered.attempt_log.map((a: { status: number }) => a.status)).toEqual([...delivered.attempt_log.slice(0, -2).map(() => 0), 500, 204]);
  });

  test('a receiver that hangs is timed out and tried again; Retry-After is honoured', async () => {
    const r = await receiver((n) => (n === 0 ? { status: 0, hang: true } : n === 1 ? { status: 503, headers: { 'Retry-After': '4' } } : { status: 200 }));
    const hook = await webhook(r.url);
    await createRepo();
    const [delivered] = await waitFor(async () => {
      const found = await deliveries(hook.id);
      return found[0]?.state === 'delivered' ? found : undefined;
    }, 'the delivery', 60_000);
    expect(delivered.attempt_log.map((a: { status: number }) => a.status)).toEqual([0, 503, 200]);
    expect(delivered.attempt_log[0].error).toMatch(/no answer within 2 s/);
    const [, second, third] = delivered.attempt_log.map((a: { attempted_at: string }) => Date.parse(a.attempted_at));
    expect(third - second).toBeGreaterThanOrEqual(4000);
  });

  test('a retry that would come after the retry window fails the delivery there and then', async () => {
    // The receiver asks for two hours; the window is one.
    const r = await receiver(() => ({ status: 503, headers: { 'Retry-After': '7200' } }));
    await h.api.put('/settings/webhook_retry_hours', { value: 1 });
    try {
      const hook = await webhook(r.url);
      await createRepo();
      const [failed] = await waitFor(async () => {
        const found = await deliveries(hook.id);
        return found[0]?.state === 'failed' ? found : undefined;
      }, 'the delivery to fail');
      expect(failed).toMatchObject({ status: 503, attempts: 1, next_attempt_at: null });
      expect(r.received).toHaveLength(1);
    } finally {
      await h.api.put('/settings/webhook_retry_hours', { value: 72 });
    }
  });

  test('a delivery shown retrying says when its next attempt is, and that attempt is not made before', async () => {
    // Three failures: the waits (about 1, 2 and 4 s) leave time to see the delivery between attempts.
    const r = await receiver((n) => ({ status: n < 3 ? 500 : 200 }));
    const hook = await webhook(r.url);
    await createRepo();
    const seen: { state: string; next_attempt_at: string | null; attempts: number }[] = [];
    const [delivered] = await waitFor(async () => {
      const found = await deliveries(hook.id);
      if (found[0]) seen.push(found[0]);
      return found[0]?.state === 'delivered' ? found : undefined;
    }, 'the delivery', 60_000, 20);
    const retrying = seen.filter((d) => d.state === 'retrying');
    expect(retrying.length).toBeGreaterThan(0);
    expect(seen.filter((d) => d.state !== 'retrying').every((d) => d.next_attempt_at === null)).toBe(true);
    const attempted = delivered.attempt_log.map((a: { attempted_at: string }) => Date.parse(a.attempted_at));
    expect(attempted).toHaveLength(4);
    for (const d of retrying) {
      expect(d.next_attempt_at).toEqual(expect.any(String));
      // attempt_log[n] is attempt n + 1: the one this wait was for.
      expect(attempted[d.attempts]).toBeGreaterThanOrEqual(Date.parse(d.next_attempt_at as string));
    }
  });

  test('with the debug setting, the response body is kept, even one with a NUL in it', async () => {
    await h.api.put('/settings/api_webhook_store_response_body_debug', { value: true });
    try {
      const r = await receiver(() => ({ status: 200, body: 'accepted\u0000by the receiver' }));
      const hook = await webhook(r.url);
      await createRepo();
      const [delivery] = await waitFor(async () => {
        const found = await deliveries(hook.id);
        return found[0]?.state === 'delivered' ? found : undefined;
      }, 'the delivery');
      expect(delivery).toMatchObject({ attempts: 1, response: 'accepted\uFFFDby the receiver' });
      expect(r.received).toHaveLength(1);
    } finally {
      await h.api.put('/settings/api_webhook_store_response_body_debug', { value: false });
    }
  });

  test('a redirect is not followed: the delivery is retried, the other address never called', async () => {
    const elsewhere = await receiver();
    const r = await receiver((n) => (n === 0 ? { status: 302, headers: { Location: elsewhere.url } } : { status: 200 }));
    const hook = await webhook(r.url);
    await createRepo();
    const [delivered] = await waitFor(async () => {
      const found = await deliveries(hook.id);
      return found[0]?.state === 'delivered' ? found : undefined;
    }, 'the delivery');
    expect(delivered.attempt_log.map((a: { status: number; error: string | null }) => [a.status, a.error])).toEqual([[302, 'HTTP 302 (redirects are not followed)'], [200, null]]);
    expect(elsewhere.received).toHaveLength(0);
  });

  test('410 Gone disables the webhook and stops retrying', async () => {
    const r = await receiver(() => ({ status: 410 }));
    const hook = await webhook(r.url);
    await createRepo();
    await waitFor(async () => ((await h.api.get(`/webhooks/${hook.id}`)).body.data.enabled === false ? true : undefined), 'the webhook to be disabled');
    const [delivery] = await deliveries(hook.id);
    expect(delivery).toMatchObject({ state: 'failed', status: 410, attempts: 1 });
    await createRepo();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(r.received).toHaveLength(1);
  });

  test('100 events fan out to 3 receivers with none lost and none doubled', async () => {
    const rs = await Promise.all([receiver(), receiver(), receiver()]);
    await Promise.all(rs.map((r) => webhook(r.url)));
    const repos: number[] = [];
    for (let i = 0; i < 100; i++) repos.push((await createRepo()).id);
    for (const r of rs) {
      await waitFor(async () => (new Set(r.received.map((q) => bodyOf(q).data.id)).size >= 100 ? true : undefined), 'all 100 events', 180_000, 500);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const r of rs) {
      const ids = r.received.map((q) => bodyOf(q).data.id).filter((id: number) => repos.includes(id));
      expect(ids.sort((a: number, b: number) => a - b)).toEqual([...repos].sort((a, b) => a - b));
      expect(new Set(r.received.map((q) => q.headers['x-fulgurite-delivery'])).size).toBe(r.received.length);
    }
  });
});

describe('the test and redelivery routes', () => {
  test('POST /webhooks/{id}/test sends webhook.test once and answers with the outcome', async () => {
    const r = await receiver((n) => ({ status: n === 0 ? 200 : 500 }));
    const hook = await webhook(r.url);
    const ok = await h.api.post(`/webhooks/${hook.id}/test`);
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ status: 200, error: null, final_url: r.url, response_body_stored: false, delivery_id: expect.any(Number) });
    expect(bodyOf(r.received[0] as Received)).toMatchObject({ event: 'webhook.test', data: { message: expect.any(String), at: expect.any(String) } });
    expect(signatureValid(r.received[0] as Received, hook.secret)).toBe(true);
    const failed = await h.api.post(`/webhooks/${hook.id}/test`);
    expect(failed.body.data).toMatchObject({ status: 500, error: 'HTTP 500' });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(r.received).toHaveLength(2); // a test is not retried
  });

  test('a past delivery is redelivered as a new delivery with the same bytes, signed with the current secret', async () => {
    const r = await receiver();
    const hook = await webhook(r.url);
    await createRepo();
    const [first] = await waitFor(async () => {
      const found = await deliveries(hook.id);
      return found[0]?.state === 'delivered' ? found : undefined;
    }, 'the first delivery');
    await h.api.patch(`/webhooks/${hook.id}`, { secret: 'rotated-secret-for-redelivery' });
    const again = await h.api.post(`/webhooks/${hook.id}/deliveries/${first.id}/redeliver`);
    expect(again.status).toBe(202);
    expect(again.body.data).toMatchObject({ redelivery_of: first.id, event: 'repo.created', payload: first.payload });
    expect(again.body.data.guid).not.toBe(first.guid);
    await waitFor(async () => (r.received.length >= 2 ? true : undefined), 'the redelivery');
    const [original, repeated] = r.received as [Received, Received];
    expect(repeated.raw.equals(original.raw)).toBe(true);
    expect(signatureValid(repeated, 'rotated-secret-for-redelivery')).toBe(true);
    expect(repeated.headers['x-fulgurite-delivery']).toBe(again.body.data.guid);
    expectError(await h.api.post(`/webhooks/${hook.id}/deliveries/99999999/redeliver`), 404, 'not_found');
  });
});
