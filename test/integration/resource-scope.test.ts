import { randomUUID } from 'node:crypto';
import { User } from '../../db/entities';
import type { ApiResponse } from '../support/api-client';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { expectError, unique } from '../support/expectations';

/**
 * Repository and host scope, per token and per user: two teams sharing one control plane see
 * disjoint lists and totals, and cannot reach, name or count each other's resources.
 */
let h: Harness;
const team = {
  a: { repo: 0, host: 0, key: 0, job: 0, localJob: 0, names: [] as string[] },
  b: { repo: 0, host: 0, key: 0, job: 0, localJob: 0, names: [] as string[] },
};
let alice: Caller;
let bob: Caller;

async function created(path: string, body: Record<string, unknown>): Promise<number> {
  const res = await h.api.post(path, body);
  expect(res.status).toBe(201);
  return res.body.data.id;
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  for (const [name, t] of Object.entries(team)) {
    const repoName = `repo-${name}-${unique()}`;
    const hostName = `host-${name}-${unique()}`;
    const keyName = `key-${name}-${unique()}`;
    const jobName = `job-${name}-${unique()}`;
    t.names = [repoName, hostName, keyName, jobName];
    t.repo = await created('/repos', { name: repoName, path: `/srv/scope/${unique()}`, password: 'scope-pw' });
    t.key = await created('/ssh-keys', { name: keyName, host: `${name}.example.internal` });
    t.host = await created('/hosts', { name: hostName, hostname: `${name}.example.internal`, ssh_key_id: t.key });
    t.job = await created('/backup-jobs', { name: jobName, repo_id: t.repo, host_id: t.host, source_paths: ['/etc'] });
    t.localJob = await created('/backup-jobs', { name: `local-${name}-${unique()}`, repo_id: t.repo, source_paths: ['/etc'] });
  }
  // Alice's limits are on her token; Bob's on his user account.
  alice = await h.createCaller({
    user: { role: 'operator' },
    token: {
      scopes: ['repos:read', 'backup_jobs:read', 'backup_jobs:write', 'backup_jobs:run', 'logs:read', 'me:read'],
      repoScopeMode: 'selected', repoScopeIds: [team.a.repo], hostScopeMode: 'selected', hostScopeIds: [team.a.host],
    },
  });
  bob = await h.createCaller({
    user: { repoScopeMode: 'selected', repoScopeIds: [team.b.repo], hostScopeMode: 'selected', hostScopeIds: [team.b.host] },
  });
});
afterAll(async () => {
  await h?.stop();
});

const idsOf = (res: { body: { data: { id: number }[] } }) => res.body.data.map((item) => item.id).sort((x, y) => x - y);

describe('lists and their totals', () => {
  test.each([
    ['/repos', 'repo'],
    ['/backup-jobs', 'jobs'],
  ] as const)('%s: each team sees its own items only', async (path, kind) => {
    // Both teams are host-scoped, so neither sees the local jobs of its repository.
    const expected = (t: typeof team.a) => (kind === 'repo' ? [t.repo] : [t.job]);
    for (const [caller, own, other] of [[alice, team.a, team.b], [bob, team.b, team.a]] as const) {
      const res = await caller.api.get(`${path}?per_page=200`);
      expect(res.status).toBe(200);
      expect(idsOf(res)).toEqual(expected(own));
      expect(res.body.meta.total).toBe(expected(own).length);
      for (const name of other.names) expect(res.text).not.toContain(name);
    }
    // The administrator, unrestricted, sees both.
    const all = await h.api.get(`${path}?per_page=200`);
    expect(idsOf(all)).toEqual(expect.arrayContaining([...expected(team.a), ...expected(team.b)]));
  });

  test('/hosts and /ssh-keys: a host-scoped user sees their hosts and the keys those hosts use', async () => {
    const hosts = await bob.api.get('/hosts?per_page=200');
    expect(idsOf(hosts)).toEqual([team.b.host]);
    expect(hosts.body.meta.total).toBe(1);
    const keys = await bob.api.get('/ssh-keys?per_page=200');
    expect(idsOf(keys)).toEqual([team.b.key]);
    expect(keys.body.meta.total).toBe(1);
    for (const name of team.a.names) expect(hosts.text + keys.text).not.toContain(name);
  });

  test('local jobs run on the control plane itself: a host-scoped caller cannot see, create, retarget or run them', async () => {
    const jobs = await alice.api.get('/backup-jobs?per_page=200');
    expect(idsOf(jobs)).toEqual([team.a.job]);
    expectError(await alice.api.get(`/backup-jobs/${team.a.localJob}`), 403, 'host_not_in_scope');
    expectError(await alice.api.post(`/backup-jobs/${team.a.localJob}/run`), 403, 'host_not_in_scope');
    expectError(await alice.api.post('/backup-jobs', { name: `local-${unique()}`, repo_id: team.a.repo, source_paths: ['/etc/shadow'] }), 403, 'host_not_in_scope');
    expectError(await alice.api.patch(`/backup-jobs/${team.a.job}`, { host_id: null }), 403, 'host_not_in_scope');
    expect(await h.count('backup_jobs', 'host_id is null')).toBe(2);
  });

  test('unknown job ids answer a limited caller like jobs out of scope: ids reveal nothing', async () => {
    expectError(await bob.api.get('/backup-jobs/999999'), 403, 'repo_not_in_scope');
    expectError(await bob.api.get(`/backup-jobs/${team.a.job}`), 403, 'repo_not_in_scope');
    expectError(await h.api.get('/backup-jobs/999999'), 404, 'not_found');
  });

  test('the API audit log shows a non-administrator only their own tokens\u2019 requests', async () => {
    await bob.api.get('/repos');
    const entries = await alice.api.get('/logs/api-tokens?per_page=200');
    expect(entries.status).toBe(200);
    expect(entries.body.data.length).toBeGreaterThan(0);
    expect(new Set(entries.body.data.map((e: { token_id: number }) => e.token_id))).toEqual(new Set([alice.tokenId]));
    const all = await h.api.get(`/logs/api-tokens?per_page=200&token_id=${bob.tokenId}`);
    expect(all.body.data.length).toBeGreaterThan(0);
  });
});

describe('direct access', () => {
  test('reading, changing, deleting or running the other team\u2019s resources is 403 and names nothing', async () => {
    const cases: [Promise<ApiResponse>, string][] = [
      [bob.api.get(`/repos/${team.a.repo}`), 'repo_not_in_scope'],
      [bob.api.patch(`/repos/${team.a.repo}`, { description: 'mine now' }), 'repo_not_in_scope'],
      [bob.api.delete(`/repos/${team.a.repo}`), 'repo_not_in_scope'],
      [bob.api.get(`/repos/${team.a.repo}/snapshots`), 'repo_not_in_scope'],
      [bob.api.get(`/hosts/${team.a.host}`), 'host_not_in_scope'],
      [bob.api.post(`/hosts/${team.a.host}/test`), 'host_not_in_scope'],
      [bob.api.get(`/ssh-keys/${team.a.key}`), 'host_not_in_scope'],
      [bob.api.get(`/backup-jobs/${team.a.job}`), 'repo_not_in_scope'],
      [bob.api.post(`/backup-jobs/${team.a.job}/run`), 'repo_not_in_scope'],
      [bob.api.get(`/backup-jobs/${team.a.job}/runs`), 'repo_not_in_scope'],
      [alice.api.get(`/backup-jobs/${team.b.localJob}`), 'repo_not_in_scope'],
      [bob.api.get(`/backup-jobs/${team.b.localJob}`), 'host_not_in_scope'],
    ];
    for (const [pending, code] of cases) {
      const res = await pending;
      expectError(res, 403, code);
      for (const name of team.a.names.concat(team.b.names)) expect(res.text).not.toContain(name);
    }
    expect((await h.api.get(`/repos/${team.a.repo}`)).body.data.description).toBeNull();
  });

  test('an id that does not exist answers like an id out of scope: existence is not revealed', async () => {
    expectError(await bob.api.get('/repos/999999'), 403, 'repo_not_in_scope');
    expectError(await bob.api.get('/hosts/999999'), 403, 'host_not_in_scope');
  });

  test('jobs cannot be pointed at the other team\u2019s repository or host', async () => {
    const before = await h.api.get('/backup-jobs?per_page=200');
    expectError(await alice.api.post('/backup-jobs', { name: `x-${unique()}`, repo_id: team.b.repo, source_paths: ['/etc'] }), 403, 'repo_not_in_scope');
    expectError(await alice.api.post('/backup-jobs', { name: `x-${unique()}`, repo_id: team.a.repo, host_id: team.b.host, source_paths: ['/etc'] }), 403, 'host_not_in_scope');
    expectError(await alice.api.patch(`/backup-jobs/${team.a.job}`, { repo_id: team.b.repo }), 403, 'repo_not_in_scope');
    expectError(await alice.api.patch(`/backup-jobs/${team.a.job}`, { host_id: team.b.host }), 403, 'host_not_in_scope');
    expect((await h.api.get('/backup-jobs?per_page=200')).body).toEqual(before.body);
  });

  test('a scoped caller cannot create repositories, hosts or SSH keys outside any scope', async () => {
    expectError(await bob.api.post('/repos', { name: `r-${unique()}`, path: `/srv/scope/${unique()}`, password: 'pw' }), 403, 'repo_create_not_in_scope');
    expectError(await bob.api.post('/hosts', { name: `h-${unique()}`, hostname: 'new.example' }), 403, 'host_create_not_in_scope');
    expectError(await bob.api.post('/ssh-keys', { name: `k-${unique()}`, host: 'new.example' }), 403, 'host_create_not_in_scope');
  });

  test('a host-scoped caller cannot attach another team\u2019s SSH key to its host', async () => {
    expectError(await bob.api.patch(`/hosts/${team.b.host}`, { ssh_key_id: team.a.key }), 403, 'host_not_in_scope');
    expect((await bob.api.patch(`/hosts/${team.b.host}`, { ssh_key_id: team.b.key })).status).toBe(200);
  });
});

describe('token and user scopes combine', () => {
  test('a token narrows its user; it never widens them; a user change applies to their tokens at once', async () => {
    const caller = await h.createCaller({
      user: { repoScopeMode: 'selected', repoScopeIds: [team.a.repo, team.b.repo] },
      token: { repoScopeMode: 'selected', repoScopeIds: [team.b.repo] },
    });
    expect(idsOf(await caller.api.get('/repos'))).toEqual([team.b.repo]);
    const em = h.services.orm.em.fork();
    await em.nativeUpdate(User, { id: caller.userId }, { repoScopeIds: [team.a.repo] });
    // The token allows B, the user now only A: nothing is left.
    expect(idsOf(await caller.api.get('/repos'))).toEqual([]);
    expectError(await caller.api.get(`/repos/${team.b.repo}`), 403, 'repo_not_in_scope');
    await em.nativeUpdate(User, { id: caller.userId }, { repoScopeMode: 'all' });
    expect(idsOf(await caller.api.get('/repos'))).toEqual([team.b.repo]);
  });
});

describe('shared resources: what other teams depend on is not changed from a limited scope', () => {
  test('a repository used by a job out of reach cannot be changed or deleted (its backups would go elsewhere)', async () => {
    // A host-limited caller with every repository: team B's job on host B backs up into repo B.
    const mallory = await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [team.a.host] } });
    const before = (await h.api.get(`/repos/${team.b.repo}`)).body.data;
    expectError(await mallory.api.patch(`/repos/${team.b.repo}`, { path: `/srv/mallory/${unique()}`, password: 'mine' }), 403, 'host_not_in_scope');
    expectError(await mallory.api.delete(`/repos/${team.b.repo}`, { headers: { 'X-Dry-Run': '1' } }), 403, 'host_not_in_scope');
    // Repo A is also used by a local job, which runs on the worker: out of a host-limited reach.
    expectError(await mallory.api.patch(`/repos/${team.a.repo}`, { description: 'x' }), 403, 'host_not_in_scope');
    expect((await h.api.get(`/repos/${team.b.repo}`)).body.data).toEqual(before);
    // A repository only its own hosts' jobs use is theirs to change.
    const own = await created('/repos', { name: `own-${unique()}`, path: `/srv/scope/${unique()}`, password: 'pw' });
    await created('/backup-jobs', { name: `own-${unique()}`, repo_id: own, host_id: team.a.host, source_paths: ['/etc'] });
    expect((await mallory.api.patch(`/repos/${own}`, { description: 'mine' })).status).toBe(200);
  });

  test('a host used by jobs or repositories out of reach cannot be changed or deleted (it would capture their passwords)', async () => {
    const eve = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [team.a.repo] } });
    const before = (await h.api.get(`/hosts/${team.b.host}`)).body.data;
    expectError(await eve.api.patch(`/hosts/${team.b.host}`, { hostname: '127.0.0.1', restic_path: '/tmp/capture.sh' }), 403, 'repo_not_in_scope');
    expectError(await eve.api.delete(`/hosts/${team.b.host}`, { headers: { 'X-Dry-Run': '1' } }), 403, 'repo_not_in_scope');
    expect((await h.api.get(`/hosts/${team.b.host}`)).body.data).toEqual(before);
    // A host storing another team's repository is theirs too.
    const storage = await created('/hosts', { name: `storage-${unique()}`, hostname: 'storage.example.internal' });
    await created('/repos', { name: `stored-${unique()}`, path: `sftp:root@storage.example.internal:/srv/${unique()}`, password: 'pw', ssh_host_id: storage });
    expectError(await eve.api.patch(`/hosts/${storage}`, { description: 'x' }), 403, 'repo_not_in_scope');
    // A host only her repository's jobs use is hers to change.
    const ours = await created('/hosts', { name: `ours-${unique()}`, hostname: 'ours.example.internal' });
    await created('/backup-jobs', { name: `ours-${unique()}`, repo_id: team.a.repo, host_id: ours, source_paths: ['/etc'] });
    expect((await eve.api.patch(`/hosts/${ours}`, { description: 'ours' })).status).toBe(200);
  });

  test('a repository stored on a host out of reach is out of reach with it', async () => {
    const storage = await created('/hosts', { name: `secret-storage-${unique()}`, hostname: 'vault.example.internal' });
    const repo = await created('/repos', { name: `on-storage-${unique()}`, path: `sftp:root@vault.example.internal:/srv/${unique()}`, password: 'pw', ssh_host_id: storage });
    const limited = await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [team.a.host] } });
    const list = await limited.api.get('/repos?per_page=200');
    expect(idsOf(list)).not.toContain(repo);
    expect(list.text).not.toContain('secret-storage');
    for (const res of [await limited.api.get(`/repos/${repo}`), await limited.api.get(`/repos/${repo}/snapshots`)]) {
      expectError(res, 403, 'host_not_in_scope');
      expect(res.text).not.toContain('vault');
    }
    expectError(await limited.api.post('/backup-jobs', { name: `j-${unique()}`, repo_id: repo, host_id: team.a.host, source_paths: ['/etc'] }), 403, 'host_not_in_scope');
  });

  test('runs recorded before a job moved keep their repository: they stay out of reach', async () => {
    const job = await created('/backup-jobs', { name: `moved-${unique()}`, repo_id: team.b.repo, source_paths: ['/etc'] });
    const runId = randomUUID();
    await h.sql(
      `insert into backup_job_runs (id, job_id, repo_id, status, trigger, workflow_id, snapshot_id, finished_at)
       values (?, ?, ?, 'success', 'api', ?, 'b0b0b0b0', now())`,
      [runId, job, team.b.repo, `backup-job-${job}-${runId}`],
    );
    expect((await h.api.patch(`/backup-jobs/${job}`, { repo_id: team.a.repo })).status).toBe(200);
    const repoA = await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [team.a.repo] } });
    const runs = await repoA.api.get(`/backup-jobs/${job}/runs`);
    expect(runs.status).toBe(200);
    expect(runs.body.data).toEqual([]);
    expectError(await repoA.api.get(`/backup-jobs/${job}/runs/${runId}`), 404, 'not_found');
    expect((await h.api.get(`/backup-jobs/${job}/runs/${runId}`)).body.data.snapshot_id).toBe('b0b0b0b0');
  });

  test('the whole audit log takes a token that may read users, not only a user who may', async () => {
    const narrow = await h.createCaller({ token: { scopes: ['logs:read'], readOnly: true } });
    const wide = await h.createCaller({ token: { scopes: ['logs:read', 'users:read'] } });
    await bob.api.get('/me');
    expect((await narrow.api.get(`/logs/api-tokens?token_id=${bob.tokenId}`)).body.data).toEqual([]);
    expect((await wide.api.get(`/logs/api-tokens?token_id=${bob.tokenId}`)).body.data.length).toBeGreaterThan(0);
  });
});
