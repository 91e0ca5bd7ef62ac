import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectError, unique } from '../support/expectations';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';

/**
 * In-app notifications of real runs: who receives them (permission and scope), which policy
 * decides (job switch, repository policy, global settings), and how repeated failures are
 * throttled without ever being silenced for good.
 */
let h: Harness;
let dir: string;
let repo: { id: number };
let jobId: number;
let operator: Caller;
let elsewhere: Caller;
let viewer: Caller;
const password = 'notify-pw';

type Notification = { id: number; profile_key: string; event_key: string; title: string; body: string; severity: string; link_url: string; is_read: boolean; context_id: number };
const inbox = async (caller: Caller) => (await caller.api.get('/notifications?per_page=100')).body.data as Notification[];
/** Log rows of the job's events, oldest first: the relay has handled an event once its row is there. */
const logged = (n: number) => waitFor(async () => {
  const rows = await h.sql<{ event_key: string; outcome: string }>("select event_key, outcome from notification_log where context_type = 'backup_job' and context_id = ? order by id", [jobId]);
  return rows.length >= n ? rows : undefined;
}, `${n} notification log rows`);

async function run(expected: 'success' | 'failed'): Promise<string> {
  const res = await h.api.post(`/backup-jobs/${jobId}/run?wait=60`);
  expect(res.body.data.status).toBe(expected);
  return res.body.data.id;
}

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-notify-'));
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'file'), 'x\n');
  repo = (await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, 'repo'), password, init: true })).body.data;
  const other = (await h.api.post('/repos', { name: `other-${unique()}`, path: join(dir, 'other'), password })).body.data;
  jobId = (await h.api.post('/backup-jobs', { name: `nightly-${unique()}`, repo_id: repo.id, source_paths: [join(dir, 'src')] })).body.data.id;
  operator = await h.createCaller({ user: { role: 'operator' } });
  elsewhere = await h.createCaller({ user: { role: 'operator', repoScopeMode: 'selected', repoScopeIds: [other.id] } });
  viewer = await h.createCaller({ user: { role: 'viewer' } });
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a failed run notifies the users who manage the job in scope, once a day while it keeps failing', async () => {
  await h.api.patch(`/repos/${repo.id}`, { password: 'not the password' });
  const runId = await run('failed');
  const [first] = await waitFor(async () => ((await inbox(operator)).length > 0 ? inbox(operator) : undefined), 'the notification');
  expect(first).toMatchObject({
    profile_key: 'backup_job', event_key: 'failure', severity: 'error', is_read: false, context_id: jobId,
    title: expect.stringMatching(/^Backup job nightly-.* failed$/), body: expect.stringMatching(/wrong repository password/),
    link_url: `/api/v1/backup-jobs/${jobId}/runs/${runId}`,
  });
  expect(await inbox(elsewhere)).toEqual([]); // another repository's operator
  expect(await inbox(viewer)).toEqual([]); // cannot manage backup jobs

  await run('failed');
  expect((await logged(2)).map((r) => r.outcome)).toEqual(['sent', 'throttled']);
  expect(await inbox(operator)).toHaveLength(1);

  // A day later the same failure is told again: the throttle holds back repeats, it never silences.
  await h.sql("update notification_log set created_at = created_at - interval '25 hours' where context_id = ? and outcome = 'sent'", [jobId]);
  await run('failed');
  expect((await logged(3)).map((r) => r.outcome)).toEqual(['sent', 'throttled', 'sent']);
  expect(await inbox(operator)).toHaveLength(2);

  // A success in between ends the throttle: the next failure is news again.
  await h.api.patch(`/repos/${repo.id}`, { password });
  await run('success');
  await h.api.patch(`/repos/${repo.id}`, { password: 'wrong again' });
  await run('failed');
  expect((await logged(5)).map((r) => `${r.event_key}:${r.outcome}`)).toEqual(['failure:sent', 'failure:throttled', 'failure:sent', 'success:no_channel', 'failure:sent']);
  expect(await inbox(operator)).toHaveLength(3);
  await h.api.patch(`/repos/${repo.id}`, { password });
});

test('policies: the job switch, then the repository policy, then the global settings decide', async () => {
  await h.api.patch(`/repos/${repo.id}`, { notification_policy: { inherit: true, events: { success: ['in_app'] } } });
  const before = (await inbox(operator)).length;
  await run('success');
  await waitFor(async () => ((await inbox(operator)).length > before ? true : undefined), 'the success notification');
  expect((await inbox(operator))[0]).toMatchObject({ event_key: 'success', severity: 'success' });

  // notify_on_failure off: failures of this job notify nobody, whatever the repository says.
  await h.api.patch(`/backup-jobs/${jobId}`, { notify_on_failure: false });
  const logRows = (await logged(0)).length;
  await h.api.patch(`/repos/${repo.id}`, { password: 'off' });
  await run('failed');
  expect((await logged(logRows + 1)).at(-1)).toMatchObject({ event_key: 'failure', outcome: 'no_channel' });
  await h.api.patch(`/backup-jobs/${jobId}`, { notify_on_failure: true });

  // The job's own policy comes first: it names successes, so they are told whatever the repository says.
  await h.api.patch(`/repos/${repo.id}`, { password, notification_policy: { inherit: false } });
  expect((await h.api.patch(`/backup-jobs/${jobId}`, { notification_policy: { inherit: true, events: { success: ['in_app'] } } })).body.data.notification_policy).toEqual({ inherit: true, events: { success: ['in_app'] } });
  const count = (await inbox(operator)).length;
  await run('success');
  await waitFor(async () => ((await inbox(operator)).length > count ? true : undefined), 'the success told by the job policy');
  await h.api.patch(`/repos/${repo.id}`, { notification_policy: { inherit: true } });
  await h.api.patch(`/backup-jobs/${jobId}`, { notification_policy: { inherit: true } });
});

test('a revoked token tells its owner', async () => {
  const created = await operator.api.post('/api-tokens', { name: `ci-${unique()}`, scopes: ['me:read'] });
  expect((await operator.api.post(`/api-tokens/${created.body.data.id}/revoke`, { reason: 'leaked' })).status).toBe(204);
  const alert = await waitFor(async () => (await inbox(operator)).find((n) => n.profile_key === 'security'), 'the security alert');
  expect(alert).toMatchObject({ event_key: 'alert', severity: 'warning', title: expect.stringContaining(created.body.data.name), body: 'leaked' });
});

test('a token limited to other repositories reads none of its user\u2019s notifications about this one', async () => {
  const all = await inbox(operator);
  expect(all.some((n) => n.profile_key === 'backup_job')).toBe(true);
  const [other] = await h.sql<{ id: number }>("select id from repos where name like 'other-%'");
  // The operator's own token, narrowed to the other repository.
  const minted = await operator.api.post('/api-tokens', { name: `narrow-${unique()}`, scopes: ['notifications:read', 'notifications:write'], repo_scope_mode: 'selected', repo_ids: [other?.id] });
  expect(minted.status).toBe(201);
  const narrow = { api: h.api.withToken(minted.body.data.secret) } as Caller;
  const seen = await inbox(narrow);
  expect(seen.map((n) => n.id)).toEqual(all.filter((n) => n.profile_key === 'security').map((n) => n.id));
  const jobNotification = all.find((n) => n.profile_key === 'backup_job') as Notification;
  expectError(await narrow.api.post(`/notifications/${jobNotification.id}/read`), 404, 'not_found');
});

test('the inbox routes: unread count, read, read all, delete one, delete the read ones; only one\u2019s own', async () => {
  const all = await inbox(operator);
  expect(all.length).toBeGreaterThanOrEqual(3);
  expect((await operator.api.get('/notifications/unread-count')).body.data).toEqual({ unread: all.filter((n) => !n.is_read).length });
  const [a, b] = all as [Notification, Notification];
  expect((await operator.api.post(`/notifications/${a.id}/read`)).status).toBe(204);
  expect((await operator.api.post(`/notifications/${a.id}/read`)).status).toBe(204);
  expect((await operator.api.get('/notifications?unread=1&per_page=100')).body.data.map((n: Notification) => n.id)).not.toContain(a.id);
  expectError(await viewer.api.post(`/notifications/${b.id}/read`), 404, 'not_found');
  expectError(await viewer.api.delete(`/notifications/${b.id}`), 404, 'not_found');

  expect((await operator.api.delete('/notifications/read')).status).toBe(204);
  expect((await inbox(operator)).map((n) => n.id)).toEqual(all.filter((n) => n.id !== a.id).map((n) => n.id));
  const marked = await operator.api.post('/notifications/read-all');
  expect(marked.body.data).toEqual({ updated: all.length - 1 });
  expect((await operator.api.get('/notifications/unread-count')).body.data).toEqual({ unread: 0 });
  expect((await operator.api.delete(`/notifications/${b.id}`)).status).toBe(204);
  expect((await inbox(operator)).map((n) => n.id)).not.toContain(b.id);
});
