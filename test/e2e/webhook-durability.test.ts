import type { ChildProcess } from 'node:child_process';
import { startHarness, type Harness } from '../support/harness';
import { unique } from '../support/expectations';
import { waitFor } from '../support/wait';
import { signatureValid, WebhookReceiver } from '../support/webhook-receiver';
import { killWorkerProcess, startWorkerProcess } from '../support/worker-process';

/**
 * A delivery outlives its worker: the worker (in its own process) is killed while a delivery
 * waits between two attempts, and a new worker finishes it, with the same delivery id and body.
 */
let h: Harness;
let worker: ChildProcess | null = null;
const receiver = new WebhookReceiver((n) => ({ status: n === 0 ? 500 : 200 }));

beforeAll(async () => {
  h = await startHarness({ worker: false });
  await receiver.listen();
  await h.api.put('/settings/webhook_allow_private_targets', { value: true });
  await h.api.put('/settings/webhook_retry_initial_seconds', { value: 5 });
  worker = await startWorkerProcess(h);
});
afterAll(async () => {
  if (worker) await killWorkerProcess(worker);
  await receiver.close();
  await h?.stop();
});

test('a worker killed between two attempts: the next worker delivers, under the same delivery id', async () => {
  const hook = (await h.api.post('/webhooks', { name: 'durable', url: receiver.url, events: ['repo.created'] })).body.data;
  const repo = (await h.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/durable/${unique()}`, password: 'pw' })).body.data;
  const [waiting] = await waitFor(async () => {
    const list = (await h.api.get(`/webhooks/${hook.id}/deliveries`)).body.data;
    return list[0]?.state === 'retrying' ? list : undefined;
  }, 'a failed first attempt');
  expect(waiting).toMatchObject({ status: 500, attempts: 1, next_attempt_at: expect.any(String) });

  await killWorkerProcess(worker as ChildProcess);
  worker = null;
  // The retry comes due while no worker runs: nothing is sent, and nothing is lost.
  await new Promise((resolve) => setTimeout(resolve, 7000));
  expect(receiver.received).toHaveLength(1);
  worker = await startWorkerProcess(h);

  const [delivered] = await waitFor(async () => {
    const list = (await h.api.get(`/webhooks/${hook.id}/deliveries`)).body.data;
    return list[0]?.state === 'delivered' ? list : undefined;
  }, 'the delivery by the new worker', 60_000);
  expect(delivered).toMatchObject({ guid: waiting.guid, attempts: 2, status: 200 });
  expect(receiver.received).toHaveLength(2);
  const [first, second] = receiver.received;
  expect(second?.headers['x-fulgurite-delivery']).toBe(first?.headers['x-fulgurite-delivery']);
  expect(second?.raw.equals(first?.raw as Buffer)).toBe(true);
  expect(signatureValid(second as never, hook.secret)).toBe(true);
  expect(JSON.parse(second?.raw.toString() ?? '{}').data.id).toBe(repo.id);
});
