import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/harness';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { restic } from '../support/restic';

/** One snapshot by id, and its tags, against a real restic repository and a real worker. */
let h: Harness;
let dir: string;
let repo: { id: number; path: string };
const password = 'snapshot-test-pw';

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-snapshots-'));
  const source = join(dir, 'source');
  await mkdir(source);
  await writeFile(join(source, 'file.txt'), 'snapshot\n');
  const path = join(dir, 'repo');
  const created = await h.api.post('/repos', { name: `repo-${unique()}`, path, password, init: true });
  expect(created.status).toBe(201);
  repo = { id: created.body.data.id, path };
  const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repo.id, source_paths: [source], tags: ['nightly'] });
  for (let i = 0; i < 2; i++) expect((await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=60`)).body.data.status).toBe('success');
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The repository's snapshots as restic itself lists them: id -> tags. */
function resticTags(): Map<string, string[]> {
  const { status, stdout } = restic(repo.path, password, ['snapshots', '--json']);
  expect(status).toBe(0);
  return new Map((JSON.parse(stdout) as { id: string; tags?: string[] }[]).map((s) => [s.id, s.tags ?? []]));
}

/** The newest snapshot the job made (tagged nightly), or the newest of all. */
async function newest(filter = '') {
  const list = await h.api.get(`/repos/${repo.id}/snapshots?refresh=true${filter}`);
  return list.body.data[0];
}

describe('GET /repos/{id}/snapshots/{sid}', () => {
  test('finds a snapshot by short id and by full id; both answers are the listed snapshot', async () => {
    const listed = await newest();
    expect(resticTags().has(listed.id)).toBe(true);
    const byShort = await h.api.get(`/repos/${repo.id}/snapshots/${listed.short_id}`);
    expect(byShort.status).toBe(200);
    expect(byShort.body.data).toEqual(listed);
    expect((await h.api.get(`/repos/${repo.id}/snapshots/${listed.id}`)).body.data).toEqual(listed);
  });

  test('an id restic does not know is 404 (restic itself would exit 0), after a fresh look', async () => {
    expectError(await h.api.get(`/repos/${repo.id}/snapshots/deadbeef`), 404, 'not_found');
    expectError(await h.api.get(`/repos/${repo.id}/snapshots/${'d'.repeat(64)}`), 404, 'not_found');
  });

  test('a snapshot made outside the product is found: a miss re-reads the catalogue', async () => {
    const extra = join(dir, `outside-${unique()}`);
    await mkdir(extra);
    const made = restic(repo.path, password, ['backup', '--json', extra]);
    expect(made.status).toBe(0);
    const id = (made.stdout.split('\n').map((l) => (l.startsWith('{') ? JSON.parse(l) : {})).find((m) => m.message_type === 'summary') as { snapshot_id: string }).snapshot_id;
    const found = await h.api.get(`/repos/${repo.id}/snapshots/${id.slice(0, 8)}`);
    expect(found.status).toBe(200);
    expect(found.body.data.id).toBe(id);
  });
});

describe('PUT /repos/{id}/snapshots/{sid}/tags', () => {
  test('add, remove and set rewrite the snapshot: the answer has the new id, restic agrees, the old id is gone', async () => {
    const original = await newest('&tag=nightly');
    const added = await h.api.put(`/repos/${repo.id}/snapshots/${original.short_id}/tags`, { tags: ['keep', 'audit'], mode: 'add' });
    expect(added.status).toBe(200);
    expect(added.body.data.id).not.toBe(original.id);
    expect([...added.body.data.tags].sort()).toEqual(['audit', 'keep', 'nightly']);
    let tags = resticTags();
    expect(tags.has(original.id)).toBe(false);
    expect([...(tags.get(added.body.data.id) ?? [])].sort()).toEqual(['audit', 'keep', 'nightly']);
    expectError(await h.api.get(`/repos/${repo.id}/snapshots/${original.id}`), 404, 'not_found');

    const removed = await h.api.put(`/repos/${repo.id}/snapshots/${added.body.data.id}/tags`, { tags: ['nightly'], mode: 'remove' });
    expect([...removed.body.data.tags].sort()).toEqual(['audit', 'keep']);
    const set = await h.api.put(`/repos/${repo.id}/snapshots/${removed.body.data.short_id}/tags`, { tags: ['only'] });
    expect(set.body.data.tags).toEqual(['only']);
    const cleared = await h.api.put(`/repos/${repo.id}/snapshots/${set.body.data.short_id}/tags`, { tags: [], mode: 'set' });
    expect(cleared.body.data.tags).toEqual([]);
    tags = resticTags();
    expect(tags.get(cleared.body.data.id)).toEqual([]);
    expect((await h.api.get(`/repos/${repo.id}/snapshots?per_page=200`)).body.data.map((s: { id: string }) => s.id)).toContain(cleared.body.data.id);
  });

  test('a change that changes nothing keeps the id', async () => {
    const current = await newest();
    const same = await h.api.put(`/repos/${repo.id}/snapshots/${current.short_id}/tags`, { tags: current.tags, mode: 'set' });
    expect(same.status).toBe(200);
    expect(same.body.data.id).toBe(current.id);
  });

  test('bad requests and dry runs change nothing in the repository', async () => {
    const current = await newest();
    const before = resticTags();
    expectFieldError(await h.api.put(`/repos/${repo.id}/snapshots/${current.short_id}/tags`, { tags: [], mode: 'add' }), 'tags');
    expectFieldError(await h.api.put(`/repos/${repo.id}/snapshots/${current.short_id}/tags`, { tags: ['no spaces'] }), 'tags[0]');
    expectError(await h.api.put(`/repos/${repo.id}/snapshots/deadbeef/tags`, { tags: ['x'] }), 404, 'not_found');
    const dry = await h.api.put(`/repos/${repo.id}/snapshots/${current.short_id}/tags`, { tags: ['x'], mode: 'add' }, { headers: { 'X-Dry-Run': '1' } });
    expect(dry.body.data).toEqual({ dry_run: true });
    expect(resticTags()).toEqual(before);
  });
});

describe('GET /repos/{id}/stats and the statistics history', () => {
  test('restore-size statistics match restic, are sampled into the history, and are served from it for five minutes', async () => {
    const before = await h.count('repo_stats_history', 'repo_id = ?', [repo.id]);
    const stats = await h.api.get(`/repos/${repo.id}/stats`);
    expect(stats.status).toBe(200);
    const direct = restic(repo.path, password, ['stats', '--json', '--mode', 'restore-size']);
    expect(stats.body.data).toEqual(expect.objectContaining(JSON.parse(direct.stdout.trim().split('\n').pop() ?? '{}')));
    expect(stats.body.data.snapshots_count).toBe(resticTags().size);
    expect(await h.count('repo_stats_history', 'repo_id = ?', [repo.id])).toBe(before + 1);

    const again = await h.api.get(`/repos/${repo.id}/stats`);
    expect(again.body.data).toEqual({ total_size: stats.body.data.total_size, total_file_count: stats.body.data.total_file_count, snapshots_count: stats.body.data.snapshots_count });
    expect(await h.count('repo_stats_history', 'repo_id = ?', [repo.id])).toBe(before + 1);

    const history = await h.api.get(`/stats/repos/${repo.id}/history`);
    expect(history.body.data[0]).toEqual({
      id: expect.any(Number), repo_id: repo.id, snapshot_count: stats.body.data.snapshots_count,
      total_size: stats.body.data.total_size, total_file_count: stats.body.data.total_file_count, recorded_at: expect.any(String),
    });
  });

  test('another mode runs restic again and records no sample', async () => {
    const before = await h.count('repo_stats_history', 'repo_id = ?', [repo.id]);
    const raw = await h.api.get(`/repos/${repo.id}/stats?mode=raw-data`);
    expect(raw.status).toBe(200);
    expect(raw.body.data.total_blob_count).toBeGreaterThan(0);
    expect(raw.body.data.total_size).toBeGreaterThan(0);
    expect(await h.count('repo_stats_history', 'repo_id = ?', [repo.id])).toBe(before);
    expectFieldError(await h.api.get(`/repos/${repo.id}/stats?mode=everything`), 'mode');
  });

  test('the history is newest first, paginated, filtered by time, and takes the reference\u2019s limit', async () => {
    for (const [days, size] of [[3, 300], [2, 200], [1, 100]] as const) {
      await h.sql(`insert into repo_stats_history (repo_id, snapshot_count, total_size, total_file_count, recorded_at) values (?, 1, ?, 1, now() - make_interval(days => ?))`, [repo.id, size, days]);
    }
    const all = await h.api.get(`/stats/repos/${repo.id}/history?per_page=200`);
    const times = all.body.data.map((s: { recorded_at: string }) => s.recorded_at);
    expect(times).toEqual([...times].sort().reverse());
    expect(all.body.data.slice(-3).map((s: { total_size: number }) => s.total_size)).toEqual([100, 200, 300]);
    const limited = await h.api.get(`/stats/repos/${repo.id}/history?limit=2`);
    expect(limited.body.meta).toMatchObject({ per_page: 2, total: all.body.meta.total });
    const since = new Date(Date.now() - 2.5 * 86_400_000).toISOString();
    const until = new Date(Date.now() - 0.5 * 86_400_000).toISOString();
    const window = await h.api.get(`/stats/repos/${repo.id}/history?since=${since}&until=${until}`);
    expect(window.body.data.map((s: { total_size: number }) => s.total_size)).toEqual([100, 200]);
  });
});
