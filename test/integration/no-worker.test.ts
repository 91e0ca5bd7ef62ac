import type { ApiResponse } from '../support/api-client';
import { startHarness, type Harness } from '../support/harness';
import { expectError, unique } from '../support/expectations';

/**
 * Requests that answer with a worker's result (browsing a snapshot, testing a host, creating a
 * repository with `init`, testing a webhook), while no worker polls the task queue: a clear 503
 * at once instead of a wait that can only time out, and nothing started or kept.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.stop();
});

async function workflowsOnQueue(): Promise<string[]> {
  const ids: string[] = [];
  for await (const workflow of h.services.temporal.workflow.list({ query: `TaskQueue = "${h.config.temporal.taskQueue}"` })) ids.push(workflow.workflowId);
  return ids;
}

function expectNoWorker(res: ApiResponse) {
  expectError(res, 503, 'worker_unavailable');
  expect(res.body.error.message).toContain(h.config.temporal.taskQueue);
}

test('each answers 503 worker_unavailable naming the task queue, starts no workflow and keeps nothing', async () => {
  const repo = (await h.api.post('/repos', { name: `repo-${unique()}`, path: `/srv/no-worker/${unique()}`, password: 'pw' })).body.data;
  await h.sql('update repos set snapshots_refreshed_at = now() where id = ?', [repo.id]);
  await h.sql(
    `insert into snapshots (repo_id, id, short_id, time, time_text, tree, paths, hostname, username)
     values (?, ?, '5ccb402f', now(), '2026-12-04T00:00:00Z', ?, '["/etc"]', 'no-worker', 'root')`,
    [repo.id, `5ccb402f${'0'.repeat(56)}`, '2'.repeat(64)],
  );
  expectNoWorker(await h.api.get(`/repos/${repo.id}/snapshots/5ccb402f/files?path=/etc`));

  const host = (await h.api.post('/hosts', { name: `host-${unique()}`, hostname: '127.0.0.1' })).body.data;
  expectNoWorker(await h.api.post(`/hosts/${host.id}/test`));

  const path = `/srv/no-worker/${unique()}`;
  expectNoWorker(await h.api.post('/repos', { name: `repo-${unique()}`, path, password: 'pw', init: true }));
  expect(await h.count('repos', 'path = ?', [path])).toBe(0);

  await h.api.put('/settings/webhook_allow_private_targets', { value: true });
  const hook = (await h.api.post('/webhooks', { name: `hook-${unique()}`, url: 'http://127.0.0.1:9/hook', events: ['repo.created'] })).body.data;
  expectNoWorker(await h.api.post(`/webhooks/${hook.id}/test`));
  const [test] = await h.sql<{ state: string; error: string }>("select state, error from webhook_deliveries where webhook_id = ? and event = 'webhook.test'", [hook.id]);
  expect(test).toEqual({ state: 'failed', error: expect.stringContaining('no worker') });

  expect(await workflowsOnQueue()).toEqual([]);
  // The worker's status says the same.
  expect((await h.api.get('/jobs/worker')).body.data).toMatchObject({ online: false, pollers: [] });
});
