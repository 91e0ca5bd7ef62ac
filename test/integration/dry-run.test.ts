import type { Operation } from 'openapi-backend';
import { contractBackend, readContract } from '../../api/contract';
import { handlers } from '../../api/handlers';
import { startHarness, type Harness } from '../support/harness';
import { expectError, unique } from '../support/expectations';

/**
 * `X-Dry-Run: 1` on every implemented mutation: a valid request answers 200 `{dry_run: true}`
 * and changes nothing (no row, no event, no workflow); an invalid or unauthorised one fails
 * exactly as it would for real.
 */
let h: Harness;
const ids = { repo: 0, unusedRepo: 0, host: 0, sshKey: 0, job: 0, copyJob: 0, token: 0, webhook: 0, delivery: 0, notification: 0, user: 0 };

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const created = async (path: string, body: Record<string, unknown>) => {
    const res = await h.api.post(path, body);
    expect(res.status).toBe(201);
    return res.body.data.id as number;
  };
  ids.repo = await created('/repos', { name: `repo-${unique()}`, path: `/srv/dry/${unique()}`, password: 'dry-pw' });
  ids.unusedRepo = await created('/repos', { name: `repo-${unique()}`, path: `/srv/dry/${unique()}`, password: 'dry-pw' });
  ids.sshKey = await created('/ssh-keys', { name: `key-${unique()}`, host: 'dry.example.internal' });
  ids.host = await created('/hosts', { name: `host-${unique()}`, hostname: 'dry.example.internal' });
  ids.job = await created('/backup-jobs', { name: `job-${unique()}`, repo_id: ids.repo, source_paths: ['/srv/data'] });
  ids.token = await created('/api-tokens', { name: `token-${unique()}`, scopes: ['repos:read'] });
  ids.user = await created('/users', { username: `user-${unique()}`, password: 'dry-run-password', role: 'operator' });
  ids.copyJob = await created('/copy-jobs', { name: `copy-${unique()}`, source_repo_id: ids.repo, dest_path: `/srv/dry-copy/${unique()}`, dest_password: 'pw' });
  expect((await h.api.put('/settings/webhook_allow_private_targets', { value: true })).status).toBe(200);
  ids.webhook = await created('/webhooks', { name: `hook-${unique()}`, url: 'http://127.0.0.1:9/hook', events: ['repo.created'] });
  const [delivery] = await h.sql<{ id: number }>(
    `insert into webhook_deliveries (webhook_id, guid, event, body, state, workflow_started) values (?, gen_random_uuid(), 'repo.created', '{}', 'failed', true) returning id`,
    [ids.webhook],
  );
  ids.delivery = delivery?.id ?? 0;
  const [notification] = await h.sql<{ id: number }>(
    `insert into app_notifications (user_id, profile_key, event_key, title, body, severity, is_read)
     select user_id, 'backup_job', 'failure', 'a failure', 'details', 'error', true from api_tokens where id = (select min(id) from api_tokens) returning id`,
  );
  ids.notification = notification?.id ?? 0;
  // A catalogued snapshot: the dry run finds it without asking a worker.
  await h.sql(
    `insert into snapshots (repo_id, id, short_id, time, time_text, tree, paths, hostname, username)
     values (?, ?, 'abcdef01', now(), '2026-12-03T00:00:00Z', ?, '["/etc"]', 'dry', 'root')`,
    [ids.repo, `abcdef01${'0'.repeat(56)}`, '1'.repeat(64)],
  );
  await h.sql('update repos set snapshots_refreshed_at = now()');
});
afterAll(async () => {
  await h?.stop();
});

/** A real request for each implemented mutation (the test fails when a new one is missing here). */
/** [method, path, body, the GET that shows a deleted resource still there (default: the path; null: none)] */
const REQUESTS: Record<string, () => [string, string, unknown?, (string | null)?]> = {
  createRepo: () => ['POST', '/repos', { name: `repo-${unique()}`, path: `/srv/dry/${unique()}`, password: 'pw', init: true }],
  updateRepo: () => ['PATCH', `/repos/${ids.repo}`, { name: 'renamed', password: 'new' }],
  deleteRepo: () => ['DELETE', `/repos/${ids.unusedRepo}`],
  updateSnapshotTags: () => ['PUT', `/repos/${ids.repo}/snapshots/abcdef01/tags`, { tags: ['kept'], mode: 'add' }],
  deleteSnapshot: () => ['DELETE', `/repos/${ids.repo}/snapshots/abcdef01?prune=true`],
  checkRepo: () => ['POST', `/repos/${ids.repo}/check`, { read_data_subset: '5%' }],
  createHost: () => ['POST', '/hosts', { name: `host-${unique()}`, hostname: 'h.example', ssh_key_id: ids.sshKey }],
  updateHost: () => ['PATCH', `/hosts/${ids.host}`, { name: 'renamed', sudo_password: 'secret' }],
  deleteHost: () => ['DELETE', `/hosts/${ids.host}`],
  testHost: () => ['POST', `/hosts/${ids.host}/test`],
  createSshKey: () => ['POST', '/ssh-keys', { name: `key-${unique()}`, host: 'k.example' }],
  deleteSshKey: () => ['DELETE', `/ssh-keys/${ids.sshKey}`],
  testSshKey: () => ['POST', `/ssh-keys/${ids.sshKey}/test`],
  createBackupJob: () => ['POST', '/backup-jobs', { name: `job-${unique()}`, repo_id: ids.repo, source_paths: ['/srv'] }],
  updateBackupJob: () => ['PATCH', `/backup-jobs/${ids.job}`, { name: 'renamed', host_id: ids.host }],
  deleteBackupJob: () => ['DELETE', `/backup-jobs/${ids.job}`],
  runBackupJob: () => ['POST', `/backup-jobs/${ids.job}/run`],
  createCopyJob: () => ['POST', '/copy-jobs', { name: `copy-${unique()}`, source_repo_id: ids.repo, dest_path: '/srv/dry-copy/new', dest_password: 'pw', rclone_config: '[x]\ntype = local\n' }],
  updateCopyJob: () => ['PATCH', `/copy-jobs/${ids.copyJob}`, { name: 'renamed', dest_password: 'new', filter_tags: ['t'] }],
  deleteCopyJob: () => ['DELETE', `/copy-jobs/${ids.copyJob}`],
  runCopyJob: () => ['POST', `/copy-jobs/${ids.copyJob}/run`, { snapshot_id: 'abcdef01' }],
  processJobs: () => ['POST', '/jobs/process', { limit: 2, repo_ids: [ids.repo] }],
  recoverJobs: () => ['POST', '/jobs/recover', { older_than_minutes: 1 }],
  runSchedulerTask: () => ['POST', '/scheduler/tasks/integrity_check/run', undefined, null],
  createWebhook: () => ['POST', '/webhooks', { name: `hook-${unique()}`, url: 'http://127.0.0.1:9/new', events: ['repo.deleted'], secret: 'a-secret-of-enough-length' }],
  updateWebhook: () => ['PATCH', `/webhooks/${ids.webhook}`, { name: 'renamed', secret: 'rotated-secret-value', url: 'http://127.0.0.1:10/x' }],
  deleteWebhook: () => ['DELETE', `/webhooks/${ids.webhook}`],
  testWebhook: () => ['POST', `/webhooks/${ids.webhook}/test`],
  redeliverWebhookDelivery: () => ['POST', `/webhooks/${ids.webhook}/deliveries/${ids.delivery}/redeliver`],
  markNotificationRead: () => ['POST', `/notifications/${ids.notification}/read`],
  markAllNotificationsRead: () => ['POST', '/notifications/read-all'],
  deleteNotification: () => ['DELETE', `/notifications/${ids.notification}`, undefined, null],
  deleteReadNotifications: () => ['DELETE', '/notifications/read', undefined, null],
  createRestore: () => ['POST', '/restores', { repo_id: ids.repo, snapshot_id: 'abcdef01', include: ['/etc/hosts'] }],
  createApiToken: () => ['POST', '/api-tokens', { name: `t-${unique()}`, scopes: ['me:read'] }],
  updateApiToken: () => ['PATCH', `/api-tokens/${ids.token}`, { name: 'renamed', scopes: ['me:read'] }],
  revokeApiToken: () => ['POST', `/api-tokens/${ids.token}/revoke`, { reason: 'dry' }],
  deleteApiToken: () => ['DELETE', `/api-tokens/${ids.token}`],
  updateSetting: () => ['PUT', '/settings/api_enabled', { value: false }],
  createUser: () => ['POST', '/users', { username: `user-${unique()}`, password: 'a-long-password', role: 'admin', repo_scope_mode: 'selected', repo_ids: [ids.repo] }],
  updateUser: () => ['PATCH', `/users/${ids.user}`, { role: 'viewer', password: 'another-password', enabled: false }],
  deleteUser: () => ['DELETE', `/users/${ids.user}`],
};

/** Everything a mutation could change, as text (the audit log and counters aside). */
async function state(): Promise<string> {
  const tables = ['users', 'api_tokens', 'ssh_keys', 'hosts', 'repos', 'backup_jobs', 'backup_job_runs', 'operation_runs', 'copy_jobs', 'restores', 'webhooks', 'webhook_deliveries', 'webhook_delivery_attempts', 'app_notifications', 'notification_log', 'snapshots', 'settings', 'events', 'api_idempotency_keys'];
  const rows = await Promise.all(tables.map((table) => h.sql(`select * from ${table} order by 1`)));
  // Token usage is recorded on every request, dry or not; the relay marks events it has handed on.
  return JSON.stringify(rows, (key, value) => (key === 'last_used_at' || key === 'last_used_ip' || key === 'relayed_at' ? undefined : value));
}

async function workflowCount(): Promise<number> {
  let n = 0;
  for await (const workflow of h.services.temporal.workflow.list({ query: `TaskQueue = "${h.config.temporal.taskQueue}"` })) n += workflow ? 1 : 0;
  return n;
}

test('covers every implemented mutation of the contract', async () => {
  const operations = (await contractBackend(readContract())).getOperations() as Operation[];
  const mutations = operations
    .filter((o) => o.method !== 'get' && handlers[o.operationId as keyof typeof handlers])
    .map((o) => o.operationId)
    .sort();
  expect(Object.keys(REQUESTS).sort()).toEqual(mutations);
});

test.each(Object.keys(REQUESTS))('%s: 200 dry_run, nothing changed, nothing started', async (operationId) => {
  const [method, path, body, stillThere = path.split('?')[0] as string] = (REQUESTS[operationId] as () => [string, string, unknown?, (string | null)?])();
  const before = await state();
  const workflowsBefore = await workflowCount();
  const res = await h.api.request(method, path, { body, headers: { 'X-Dry-Run': '1' } });
  expect({ operationId, status: res.status }).toEqual({ operationId, status: 200 });
  expect(res.body.data.dry_run).toBe(true);
  expect(await state()).toBe(before);
  expect(await workflowCount()).toBe(workflowsBefore);
  // The real request still works afterwards (the dry run reserved nothing).
  if (method === 'DELETE' && stillThere) expect((await h.api.request('GET', stillThere)).status).toBe(200);
});

test('a dry run fails as the real request would: validation, references, conflicts and scope', async () => {
  const viewer = await h.createCaller({ user: { role: 'viewer' } });
  const before = await state();
  const dry = { headers: { 'X-Dry-Run': 'true' } };
  expectError(await h.api.post('/repos', { name: 'x', path: 'relative', password: 'pw' }, dry), 422, 'validation_error');
  expectError(await h.api.post('/backup-jobs', { name: 'x', repo_id: 999999, source_paths: ['/srv'] }, dry), 422, 'validation_error');
  expectError(await h.api.patch('/repos/999999', { name: 'x' }, dry), 404, 'not_found');
  expectError(await h.api.delete(`/repos/${ids.repo}`, dry), 409, 'repo_in_use');
  expectError(await h.api.put('/settings/cron_run_minute', { value: 60 }, dry), 422, 'validation_error');
  expectError(await viewer.api.post('/repos', { name: 'x', path: '/srv/x', password: 'pw' }, dry), 403, 'permission_revoked');
  expect(await state()).toBe(before);
});
