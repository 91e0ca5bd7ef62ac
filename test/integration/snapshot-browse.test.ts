import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/harness';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { restic, resticAsync } from '../support/restic';

/** Browsing snapshots one directory at a time, against real restic repositories. */
let h: Harness;
let dir: string;
let src: string;
let repoId: number;
let repoPath: string;
let snapshotId: string;
const password = 'browse-test-pw';
const latin1Name = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]); // "café.txt" in Latin-1
const latin1Dir = Buffer.from([0x64, 0xe9, 0x6a, 0xe0]); // "déjà" in Latin-1

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-browse-'));
  src = join(dir, 'src');
  await mkdir(join(src, 'etc', 'nested'), { recursive: true });
  await writeFile(join(src, 'etc', 'hosts'), '127.0.0.1 localhost\n');
  await writeFile(join(src, 'etc', 'nested', 'deep.conf'), 'deep\n');
  await writeFile(join(src, 'new\nline'), 'n');
  await writeFile(join(src, 'quote"and\\backslash'), 'q');
  await writeFile(join(src, 'ok-\u00e9\u00e8 \ud83d\ude00'), 'utf8');
  await writeFile(Buffer.from(`${src}/${latin1Name.toString('latin1')}`, 'latin1'), 'latin1');
  await writeFile(Buffer.concat([Buffer.from(`${src}/`), latin1Name]), '1234');
  await mkdir(Buffer.concat([Buffer.from(`${src}/`), latin1Dir]));
  await writeFile(Buffer.concat([Buffer.from(`${src}/`), latin1Dir, Buffer.from('/inside.txt')]), 'inside');
  await symlink('etc/hosts', join(src, 'link'));

  repoPath = join(dir, 'repo');
  const repo = await h.api.post('/repos', { name: `repo-${unique()}`, path: repoPath, password, init: true });
  repoId = repo.body.data.id;
  const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoId, source_paths: [src] });
  const run = await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=60`);
  expect(run.body.data.status).toBe('success');
  snapshotId = run.body.data.snapshot_id;
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

const files = (path: string, extra = '') => h.api.get(`/repos/${repoId}/snapshots/${snapshotId.slice(0, 8)}/files?path=${encodeURIComponent(path)}${extra}`);

/** What `restic ls --json` says of one directory's direct children (its names are lossy for non-UTF-8 bytes). */
function resticChildren(path: string): { name: string; type: string; size?: number; permissions: string }[] {
  const listed = restic(repoPath, password, ['ls', '--json', '--no-lock', snapshotId, path]);
  expect(listed.status).toBe(0);
  return listed.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((node) => node.struct_type === 'node' && node.path !== path && node.path.slice(0, node.path.lastIndexOf('/')) === path);
}

describe('GET /repos/{id}/snapshots/{sid}/files', () => {
  test('lists one directory level as restic stores it, in restic\u2019s order, with the metadata restic shows', async () => {
    const res = await files(src);
    expect(res.status).toBe(200);
    const direct = resticChildren(src);
    expect(res.body.data.map((e: { name: string }) => e.name)).toEqual(direct.map((n) => n.name));
    expect(res.body.meta).toMatchObject({ total: direct.length, page: 1 });
    for (const [i, node] of direct.entries()) {
      expect(res.body.data[i]).toMatchObject({ type: node.type, permissions: node.permissions, ...(node.size !== undefined ? { size: node.size } : {}) });
    }
    const byName = new Map(res.body.data.map((e: { name: string }) => [e.name, e]));
    expect(byName.get('etc')).toMatchObject({ type: 'dir', path: `${src}/etc`, permissions: expect.stringMatching(/^d/) });
    expect(byName.get('link')).toMatchObject({ type: 'symlink', linktarget: 'etc/hosts' });
    expect(byName.get('new\nline')).toMatchObject({ type: 'file', size: 1, path: `${src}/new\nline` });
    expect(byName.get('quote"and\\backslash')).toMatchObject({ size: 1 });
    expect(byName.get('ok-\u00e9\u00e8 \ud83d\ude00')).not.toHaveProperty('name_base64');
    expect((await files(`${src}/etc/nested`)).body.data).toEqual([
      expect.objectContaining({ name: 'deep.conf', type: 'file', size: 5, path: `${src}/etc/nested/deep.conf`, mtime: expect.any(String), uid: 0 }),
    ]);
  });

  test('names that are not UTF-8 come with their exact bytes, and such a directory can be listed by them', async () => {
    const res = await files(src);
    const latin = res.body.data.find((e: { name_base64?: string }) => e.name_base64 === latin1Name.toString('base64'));
    expect(latin).toMatchObject({ name: 'caf\ufffd.txt', type: 'file', size: 4, path_base64: Buffer.concat([Buffer.from(`${src}/`), latin1Name]).toString('base64') });
    const dirEntry = res.body.data.find((e: { name_base64?: string }) => e.name_base64 === latin1Dir.toString('base64'));
    expect(dirEntry).toMatchObject({ type: 'dir', name: 'd\ufffdj\ufffd' });

    const inside = await h.api.get(`/repos/${repoId}/snapshots/${snapshotId}/files?path_base64=${encodeURIComponent(dirEntry.path_base64)}`);
    expect(inside.status).toBe(200);
    expect(inside.body.data).toEqual([expect.objectContaining({ name: 'inside.txt', size: 6, path_base64: Buffer.concat([Buffer.from(`${src}/`), latin1Dir, Buffer.from('/inside.txt')]).toString('base64') })]);
    expect(inside.body.data[0]).not.toHaveProperty('name_base64');
  });

  test('pages join up to the whole directory', async () => {
    const whole = (await files(src, '&per_page=200')).body.data;
    const pages = [];
    for (let page = 1; page <= Math.ceil(whole.length / 3); page++) {
      const res = await files(src, `&per_page=3&page=${page}`);
      expect(res.body.meta).toEqual({ page, per_page: 3, total: whole.length, total_pages: Math.ceil(whole.length / 3) });
      pages.push(...res.body.data);
    }
    expect(pages).toEqual(whole);
    expect((await files(src, '&per_page=3&page=99')).body.data).toEqual([]);
  });

  test('the root, a missing path, a file, and bad parameters', async () => {
    const root = await files('/');
    expect(root.body.data).toEqual([expect.objectContaining({ name: 'tmp', type: 'dir', path: '/tmp' })]);
    expectError(await files(`${src}/no-such-dir`), 404, 'not_found');
    expectFieldError(await files(`${src}/etc/hosts`), 'path');
    expectFieldError(await files('relative'), 'path');
    expectFieldError(await files(src, `&path_base64=${Buffer.from(src).toString('base64')}`), 'path_base64');
    expectError(await h.api.get(`/repos/${repoId}/snapshots/deadbeef/files`), 404, 'not_found');
  });
});

/** Creates empty files with `xargs touch`: many times faster than as many opens from Node, and off the event loop. */
function touchAll(directory: string, names: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('xargs', ['-0', 'touch', '--'], { cwd: directory, stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`xargs touch exited with ${code}`))));
    child.stdin.end(names.join('\0'));
  });
}

describe('a directory of 200,000 files', () => {
  // Far more work than any other test (a 200,000-entry tree made, backed up and read twice): room for a loaded machine.
  const heavyTestTimeout = 600_000;
  test('is listed page by page with bounded memory; the first and last pages are right', async () => {
    // On tmpfs when there is one: creating 200,000 files on a virtual disk took from 5 to 27 s here.
    const big = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bcp-browse-big-'));
    const count = 200_000;
    let made;
    try {
      await touchAll(big, Array.from({ length: count }, (_, i) => `f${String(i).padStart(6, '0')}`));
      made = await resticAsync(repoPath, password, ['backup', '--json', big]);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
    expect(made.status).toBe(0);
    const id = made.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary').snapshot_id as string;

    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakHeap = before.heapUsed;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakHeap = Math.max(peakHeap, now.heapUsed);
    }, 20);
    try {
      const first = await h.api.get(`/repos/${repoId}/snapshots/${id}/files?path=${big}&per_page=200`);
      expect(first.status).toBe(200);
      expect(first.body.meta).toEqual({ page: 1, per_page: 200, total: count, total_pages: 1000 });
      expect(first.body.data.map((e: { name: string }) => e.name)).toEqual(Array.from({ length: 200 }, (_, i) => `f${String(i).padStart(6, '0')}`));
      const last = await h.api.get(`/repos/${repoId}/snapshots/${id}/files?path=${big}&per_page=200&page=1000`);
      expect(last.body.data.at(-1)).toMatchObject({ name: 'f199999', type: 'file', size: 0, path: `${big}/f199999` });
      expect(last.body.data).toHaveLength(200);
    } finally {
      clearInterval(sampler);
    }
    // The API and the worker share this process in tests: the figure covers both.
    console.log(
      `browsing a 200,000-file directory: peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (+${((peakRss - before.rss) / 2 ** 20).toFixed(0)} MiB), ` +
        `peak heap ${(peakHeap / 2 ** 20).toFixed(0)} MiB (+${((peakHeap - before.heapUsed) / 2 ** 20).toFixed(0)} MiB)`,
    );
   }, heavyTestTimeout);
});
