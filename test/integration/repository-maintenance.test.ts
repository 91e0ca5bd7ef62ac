import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockStateQuery, repositoryLockWorkflowId } from '../../workflows/repository-lock';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { restic } from '../support/restic';
import { stackEnv } from '../support/stack-env';
import { waitFor } from '../support/wait';

/**
 * Repository checks, snapshot deletions and the repository lock, against real restic
 * repositories. The worker's restic is real restic behind a wrapper that logs when each command
 * starts and ends, and holds `backup` until a gate file exists, so a backup can be kept running.
 */
let h: Harness;
let dir: string;
let gate: string;
let timeline: string;
const password = 'maintenance-test-pw';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-maintenance-'));
  gate = join(dir, 'gate');
  timeline = join(dir, 'timeline');
  await writeFile(gate, '');
  const wrapper = join(dir, 'restic');
  await writeFile(
    wrapper,
    `#!/bin/sh
cmd=unknown
for arg in "$@"; do case "$arg" in backup|check|forget|snapshots|init|unlock|stats|tag) cmd=$arg; break;; esac; done
if [ "$cmd" = backup ]; then echo "waiting backup" >> ${timeline}; while [ ! -e ${gate} ]; do sleep 0.05; done; fi
echo "start $cmd $(date +%s%N)" >> ${timeline}
${stackEnv().resticBinary} "$@"
rc=$?
echo "end $cmd $(date +%s%N)" >> ${timeline}
exit $rc
`,
  );
  await chmod(wrapper, 0o755);
  h = await startHarness({ resticBinary: wrapper });
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function source(name: string, bytes = 4096): Promise<string> {
  const path = join(dir, `src-${name}`);
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'data.bin'), randomBytes(bytes));
  return path;
}

async function repository(): Promise<{ id: number; path: string; name: string }> {
  const name = `repo-${unique()}`;
  const path = join(dir, name);
  const created = await h.api.post('/repos', { name, path, password, init: true });
  expect(created.status).toBe(201);
  return { id: created.body.data.id, path, name };
}

/** A snapshot made with restic directly; its full id. */
function backupDirectly(repoPath: string, sourcePath: string): string {
  const made = restic(repoPath, password, ['backup', '--json', sourcePath]);
  expect(made.status).toBe(0);
  const summary = made.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary');
  return summary.snapshot_id as string;
}

function resticSnapshotIds(repoPath: string): string[] {
  const listed = restic(repoPath, password, ['snapshots', '--json', '--no-lock']);
  expect(listed.status).toBe(0);
  return (JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id);
}

async function events(type: string): Promise<{ payload: Record<string, unknown> }[]> {
  return h.sql(`select payload from events where type = ? order by id`, [type]);
}

describe('POST /repos/{id}/check', () => {
  test('checks a sound repository: a successful run, recorded, listed and linked', async () => {
    const repo = await repository();
    backupDirectly(repo.path, await source('sound'));
    const checked = await h.api.post(`/repos/${repo.id}/check?wait=60`, { read_data_subset: '100%' });
    expect(checked.status).toBe(200);
    const run = checked.body.data;
    expect(run).toMatchObject({
      kind: 'repo_check', status: 'success', trigger: 'api', repo_id: repo.id, job_id: null, snapshot_id: null, failure: null, attempts: 1,
      result: { errors: false, num_errors: 0, broken_packs: [] },
      workflow_id: `repo-check-${repo.id}-${run.id}`,
      links: { self: `/api/v1/repos/${repo.id}/runs/${run.id}`, resource: `/api/v1/repos/${repo.id}` },
    });
    expect(run.duration_ms).toBeGreaterThanOrEqual(0);
    expect((await h.api.get(`/repos/${repo.id}/runs/${run.id}`)).body.data).toEqual(run);
    const listed = await h.api.get(`/repos/${repo.id}/runs?kind=repo_check`);
    expect(listed.body.data.map((r: { id: string }) => r.id)).toEqual([run.id]);
    expect(listed.body.meta).toMatchObject({ total: 1 });
    // restic really read the data.
    expect(await readFile(timeline, 'utf8')).toMatch(/start check/);
    const history = await h.services.temporal.workflow.getHandle(run.workflow_id).fetchHistory();
    const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkRepository') ?? [];
    expect(scheduled).toHaveLength(1);
  });

  test('a damaged repository is a failed check, with restic\u2019s findings and a repo.check.failure event', async () => {
    const repo = await repository();
    backupDirectly(repo.path, await source('damaged', 200_000));
    const packs = (await readdir(join(repo.path, 'data'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    const pack = packs[0];
    if (!pack) throw new Error('no pack file');
    await appendFile(join(pack.parentPath, pack.name), 'not restic data');

    const checked = await h.api.post(`/repos/${repo.id}/check?wait=60`, { read_data: true });
    expect(checked.status).toBe(200);
    expect(checked.body.data).toMatchObject({ status: 'failed', failure: { code: 'repository_damaged' }, result: { errors: true } });
    expect(checked.body.data.result.num_errors).toBeGreaterThan(0);
    expect(checked.body.data.result.broken_packs).toContain(pack.name);
    expect(checked.body.data.failure.message).toMatch(/damaged/);
    const failures = await events('repo.check.failure');
    expect(failures.map((e) => e.payload)).toContainEqual(expect.objectContaining({ id: repo.id, name: repo.name, run_id: checked.body.data.id }));
  });

  test('a wrong password fails the check at once, with no retries', async () => {
    const repo = await repository();
    expect((await h.api.patch(`/repos/${repo.id}`, { password: 'not the password' })).status).toBe(200);
    const checked = await h.api.post(`/repos/${repo.id}/check?wait=60`);
    expect(checked.body.data).toMatchObject({ status: 'failed', failure: { code: 'wrong_password' }, attempts: 1 });
    expect((await events('repo.check.failure')).map((e) => e.payload.id)).toContain(repo.id);
  });

  test('bad read-data subsets are 422 and start nothing; a dry run starts nothing', async () => {
    const repo = await repository();
    const before = await h.count('operation_runs');
    for (const subset of ['0%', '101%', '3/2', '0/4', 'lots']) {
      expectFieldError(await h.api.post(`/repos/${repo.id}/check`, { read_data_subset: subset }), 'read_data_subset');
    }
    expectFieldError(await h.api.post(`/repos/${repo.id}/check`, { read_data: 'yes' }), 'read_data');
    expect((await h.api.post(`/repos/${repo.id}/check`, {}, { headers: { 'X-Dry-Run': '1' } })).body.data).toEqual({ dry_run: true });
    expectError(await h.api.post('/repos/999999/check'), 404, 'not_found');
    expect(await h.count('operation_runs')).toBe(before);
  });
});

describe('the repository lock', () => {
  test('a check waits for a running backup (never overlapping it); a second check is 409 run_in_progress', async () => {
    const repo = await repository();
    const job = await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repo.id, source_paths: [await source('locked')] });
    await rm(gate);
    await writeFile(timeline, '');
    try {
      const backup = await h.api.post(`/backup-jobs/${job.body.data.id}/run`);
      expect(backup.status).toBe(202);
      await waitFor(async () => ((await readFile(timeline, 'utf8')).includes('waiting backup') ? true : undefined), 'the backup to start');

      const check = await h.api.post(`/repos/${repo.id}/check`);
      expect(check.status).toBe(202);
      const lock = h.services.temporal.workflow.getHandle(repositoryLockWorkflowId(repo.id));
      const state = await waitFor(async () => {
        const s = await lock.query(lockStateQuery);
        return s.waiting.length === 1 ? s : undefined;
      }, 'the check to queue for the lock');
      expect(state.holders.map((r) => [r.holderWorkflowId, r.mode])).toEqual([[backup.body.data.workflow_id, 'shared']]);
      expect(state.waiting.map((r) => [r.holderWorkflowId, r.mode])).toEqual([[check.body.data.workflow_id, 'exclusive']]);

      expectError(await h.api.post(`/repos/${repo.id}/check`), 409, 'run_in_progress', { run_id: check.body.data.id });
      expect(await h.count('operation_runs', 'repo_id = ?', [repo.id])).toBe(1);
    } finally {
      await writeFile(gate, '');
    }
    const checkRun = await waitFor(async () => {
      const runs = await h.api.get(`/repos/${repo.id}/runs`);
      const run = runs.body.data[0];
      return run?.status === 'success' ? run : undefined;
    }, 'the check to finish');
    expect(checkRun.kind).toBe('repo_check');
    const lines = (await readFile(timeline, 'utf8')).split('\n');
    const at = (what: string) => Number(lines.find((l) => l.startsWith(what))?.split(' ')[2]);
    expect(at('start check')).toBeGreaterThan(at('end backup'));
  });

  test('a stale lock left by a killed restic is removed, the check retried once, and the removal recorded', async () => {
    const repo = await repository();
    const big = await source('killed', 64 * 1024 * 1024);
    const child = spawn(stackEnv().resticBinary, ['-r', repo.path, 'backup', big], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.end(`${password}\n`);
    await waitFor(async () => ((await readdir(join(repo.path, 'locks'))).length > 0 ? true : undefined), 'restic to lock the repository', 30_000, 20);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(await readdir(join(repo.path, 'locks'))).toHaveLength(1);

    const checked = await h.api.post(`/repos/${repo.id}/check?wait=60`);
    expect(checked.body.data).toMatchObject({ status: 'success', attempts: 1 });
    expect(checked.body.data.warnings).toEqual([expect.stringMatching(/^removed 1 stale restic lock .* then retried check$/)]);
    expect(await readdir(join(repo.path, 'locks'))).toHaveLength(0);
    expect((await events('repo.stale_lock_removed')).map((e) => e.payload)).toContainEqual({ repo_id: repo.id, operation: 'check', locks_removed: 1 });
  });

  test('a lock held by a live restic is left alone: the check retries until it is released', async () => {
    const repo = await repository();
    // restic reading a backup from a pipe that stays open holds its lock as long as the pipe does.
    const child = spawn(stackEnv().resticBinary, ['-r', repo.path, 'backup', '--stdin', '--stdin-filename', 'stream'], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { ...process.env, RESTIC_PASSWORD: password },
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor(async () => ((await readdir(join(repo.path, 'locks'))).length > 0 ? true : undefined), 'restic to lock the repository', 30_000, 20);
      const check = await h.api.post(`/repos/${repo.id}/check`);
      const second = await waitFor(async () => {
        const run = (await h.api.get(`/repos/${repo.id}/runs/${check.body.data.id}`)).body.data;
        return run.attempts >= 2 ? run : undefined;
      }, 'a second attempt of the check', 90_000, 500);
      expect(second.status).toBe('running');
      expect(await readdir(join(repo.path, 'locks'))).toHaveLength(1);
      expect(await events('repo.stale_lock_removed')).not.toContainEqual(expect.objectContaining({ payload: expect.objectContaining({ repo_id: repo.id }) }));
      child.stdin.end('streamed data');
      await exited;
      const done = await waitFor(async () => {
        const run = (await h.api.get(`/repos/${repo.id}/runs/${check.body.data.id}`)).body.data;
        return run.status === 'running' || run.status === 'queued' ? undefined : run;
      }, 'the check to finish', 120_000, 500);
      expect(done).toMatchObject({ status: 'success', warnings: [] });
      expect(done.attempts).toBeGreaterThanOrEqual(2);
      expect(resticSnapshotIds(repo.path)).toHaveLength(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('DELETE /repos/{id}/snapshots/{sid}', () => {
  test('forgets one snapshot (restic no longer has it), refreshes the list and emits snapshot.deleted', async () => {
    const repo = await repository();
    const keep = backupDirectly(repo.path, await source('keep'));
    const gone = backupDirectly(repo.path, await source('gone'));
    const dry = await h.api.delete(`/repos/${repo.id}/snapshots/${gone.slice(0, 8)}`, { headers: { 'X-Dry-Run': '1' } });
    expect(dry.body.data).toMatchObject({ dry_run: true, would_delete: { snapshot: { id: gone } } });
    expect(resticSnapshotIds(repo.path)).toContain(gone);

    const deleted = await h.api.delete(`/repos/${repo.id}/snapshots/${gone.slice(0, 8)}?wait=60`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data).toMatchObject({
      kind: 'snapshot_delete', status: 'success', repo_id: repo.id, snapshot_id: gone,
      result: { removed_snapshots: [gone], pruned: false },
      workflow_id: `snapshot-delete-${repo.id}-${deleted.body.data.id}`,
      links: { resource: `/api/v1/repos/${repo.id}/snapshots/${gone}` },
    });
    expect(resticSnapshotIds(repo.path)).toEqual([keep]);
    expectError(await h.api.get(`/repos/${repo.id}/snapshots/${gone}`), 404, 'not_found');
    expect((await h.api.get(`/repos/${repo.id}/snapshots`)).body.data.map((s: { id: string }) => s.id)).toEqual([keep]);
    expect((await events('snapshot.deleted')).map((e) => e.payload)).toContainEqual({ repo_id: repo.id, snapshot_id: gone, pruned: false });
    expectError(await h.api.delete(`/repos/${repo.id}/snapshots/${gone.slice(0, 8)}`), 404, 'not_found');
  });

  test('with prune=true the data only that snapshot used is removed from the repository', async () => {
    const repo = await repository();
    backupDirectly(repo.path, await source('base'));
    const unique = backupDirectly(repo.path, await source('unique-data', 2_000_000));
    const blobs = () => JSON.parse(restic(repo.path, password, ['stats', '--json', '--mode', 'raw-data', '--no-lock']).stdout).total_blob_count as number;
    const before = blobs();
    const deleted = await h.api.delete(`/repos/${repo.id}/snapshots/${unique}?prune=true&wait=60`);
    expect(deleted.body.data).toMatchObject({ status: 'success', result: { pruned: true } });
    expect(blobs()).toBeLessThan(before);
    expect(restic(repo.path, password, ['check', '--no-lock']).status).toBe(0);
  });

  test('needs the admin role (403 admin_required); nothing is deleted', async () => {
    const repo = await repository();
    const id = backupDirectly(repo.path, await source('kept'));
    const operator = await h.createCaller({ user: { role: 'operator', permissions: ['repos.view', 'snapshots.manage'] } });
    expectError(await operator.api.delete(`/repos/${repo.id}/snapshots/${id}`), 403, 'admin_required');
    expect(resticSnapshotIds(repo.path)).toEqual([id]);
    expect(existsSync(join(repo.path, 'snapshots', id))).toBe(true);
  });
});
