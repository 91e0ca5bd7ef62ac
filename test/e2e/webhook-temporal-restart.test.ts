import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveTemporal, type ResolvedTemporal } from '../../scripts/lib/temporal';
import { unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';
import { signatureValid, WebhookReceiver } from '../support/webhook-receiver';
import { killWorkerProcess, startWorkerProcess } from '../support/worker-process';

/**
 * A delivery outlives its Temporal server: a Temporal dev server of this test's own, keeping its
 * state in a file, is stopped while a delivery waits between two attempts and started again on
 * that file; the delivery then completes under the same delivery id.
 */
let h: Harness;
let dir: string;
let temporal: ResolvedTemporal | null = null;
let worker: ChildProcess | null = null;
const receiver = new WebhookReceiver((n) => ({ status: n === 0 ? 500 : 200 }));

const startTemporal = () => resolveTemporal({ persistent: true, address: undefined, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log'), preferDefaultPorts: false });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-temporal-restart-'));
  h = await startHarness({ worker: false });
  await receiver.listen();
  await h.api.put('/settings/webhook_allow_private_targets', { value: true });
  await h.api.put('/settings/webhook_retry_initial_seconds', { value: 5 });
  temporal = await startTemporal();
  worker = await startWorkerProcess(h, { TEMPORAL_ADDRESS: temporal.address });
});
afterAll(async () => {
  if (worker) await killWorkerProcess(worker);
  await temporal?.stop?.();
  await receiver.close();
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the Temporal server restarts between two attempts: the delivery completes, under the same delivery id', async () => {
  const hook = (await h.api.post('/webhooks', { name: 'durable', url: receiver.url, events: ['repo.created'] })).body.data;
  await h.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/restart/${unique()}`, password: 'pw' });
  const [waiting] = await waitFor(async () => {
    const list = (await h.api.get(`/webhooks/${hook.id}/deliveries`)).body.data;
    return list[0]?.state === 'retrying' ? list : undefined;
  }, 'a failed first attempt', 60_000);

  await killWorkerProcess(worker as ChildProcess);
  worker = null;
  await temporal?.stop?.();
  temporal = await startTemporal();
  worker = await startWorkerProcess(h, { TEMPORAL_ADDRESS: temporal.address });

  const [delivered] = await waitFor(async () => {
    const list = (await h.api.get(`/webhooks/${hook.id}/deliveries`)).body.data;
    return list[0]?.state === 'delivered' ? list : undefined;
  }, 'the delivery after the restart', 90_000);
  expect(delivered).toMatchObject({ guid: waiting.guid, attempts: 2, status: 200 });
  expect(receiver.received).toHaveLength(2);
  expect(receiver.received[1]?.headers['x-fulgurite-delivery']).toBe(waiting.guid);
  expect(receiver.received[1]?.raw.equals(receiver.received[0]?.raw as Buffer)).toBe(true);
  expect(signatureValid(receiver.received[1] as never, hook.secret)).toBe(true);
});
