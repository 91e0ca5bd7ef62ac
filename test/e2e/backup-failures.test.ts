import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestSshd, type TestSshd } from '../../scripts/lib/sshd';
import { startHarness, type Harness } from '../support/harness';
import { stackEnv } from '../support/stack-env';
import { waitFor } from '../support/wait';

/** Runs of backup jobs that go wrong, or that are watched while they go on. */
describe('backup runs: failures, local jobs and runs in flight', () => {
  let h: Harness;
  let dir: string;
  let keyId: number;
  let publicKey: string;
  const password = 'the right password';

  beforeAll(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'bcp-e2e-failures-'));
    const sshd = stackEnv().sshd;
    const key = await h.api.post('/ssh-keys', { name: 'failures key', host: sshd.host, port: sshd.port, user: sshd.user });
    keyId = key.body.data.id;
    publicKey = key.body.data.public_key;
    await appendFile(sshd.authorizedKeysFile, `${publicKey}\n`);
  });
  afterAll(async () => {
    await h?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function sourceDir(name: string): Promise<string> {
    const path = join(dir, name);
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'file.txt'), `${name}\n`);
    return path;
  }

  async function repo(name: string, init = true): Promise<{ id: number; path: string }> {
    const path = join(dir, name);
    const created = await h.api.post('/repos', { name, path, password, init });
    expect(created.status).toBe(201);
    return { id: created.body.data.id, path };
  }

  async function job(body: Record<string, unknown>): Promise<number> {
    const created = await h.api.post('/backup-jobs', { name: `job ${randomBytes(3).toString('hex')}`, ...body });
    expect(created.status).toBe(201);
    return created.body.data.id;
  }

  async function runToEnd(jobId: number) {
    const run = await h.api.post(`/backup-jobs/${jobId}/run?wait=120`);
    expect(run.status).toBe(200);
    return run.body.data;
  }

  async function backupAttempts(workflowId: string): Promise<number> {
    const history = await h.services.temporal.workflow.getHandle(workflowId).fetchHistory();
    const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
    return Math.max(0, ...started.map((e) => Number(e.activityTaskStartedEventAttributes?.attempt ?? 0)));
  }

  test('a local job (no host) runs restic on the worker', async () => {
    const r = await repo('local-repo');
    const jobId = await job({ repo_id: r.id, source_paths: [await sourceDir('local-src')], tags: ['local'] });
    const run = await runToEnd(jobId);
    expect(run).toMatchObject({ status: 'success', host_id: null, failure: null, attempts: 1 });
    const snapshots = await h.api.get(`/repos/${r.id}/snapshots`);
    expect(snapshots.body.data.map((s: { id: string }) => s.id)).toEqual([run.snapshot_id]);
    expect(snapshots.body.data[0].tags).toEqual(['local']);
    const events = await h.sql<{ payload: Record<string, unknown> }>("select payload from events where type = 'backup_job.success' and payload->>'run_id' = ?", [run.id]);
    expect(events.map((e) => e.payload)).toEqual([expect.objectContaining({ id: jobId, run_id: run.id, snapshot_id: run.snapshot_id, status: 'success', failure: null })]);
  });

  test('a wrong password fails at once, with a clear error and no retries', async () => {
    const r = await repo('rotated-repo');
    expect((await h.api.patch(`/repos/${r.id}`, { password: 'not the password' })).status).toBe(200);
    const jobId = await job({ repo_id: r.id, source_paths: [await sourceDir('pw-src')] });
    const run = await runToEnd(jobId);
    expect(run.status).toBe('failed');
    expect(run.failure.code).toBe('wrong_password');
    expect(run.failure.message).toMatch(/wrong repository password/);
    expect(run.attempts).toBe(1);
    expect(await backupAttempts(run.workflow_id)).toBe(1);
    expect((await h.services.temporal.workflow.getHandle(run.workflow_id).describe()).status.name).toBe('FAILED');
    const after = await h.api.get(`/backup-jobs/${jobId}`);
    expect(after.body.data).toMatchObject({ last_status: 'failed', last_error: run.failure.message, last_run_id: run.id });
    const events = await h.sql<{ payload: Record<string, unknown> }>("select payload from events where type = 'backup_job.failure' and payload->>'run_id' = ?", [run.id]);
    expect(events.map((e) => e.payload)).toEqual([expect.objectContaining({ id: jobId, run_id: run.id, status: 'failed', failure: run.failure })]);
  });

  test('a missing repository fails at once and is never initialised by a run', async () => {
    const r = await repo('never-initialised', false);
    const jobId = await job({ repo_id: r.id, source_paths: [await sourceDir('missing-src')] });
    const run = await runToEnd(jobId);
    expect(run.failure.code).toBe('repository_not_found');
    expect(run.attempts).toBe(1);
    expect(existsSync(join(r.path, 'config'))).toBe(false);
  });

  describe('a host whose key changes', () => {
    let sshd: TestSshd;
    beforeAll(async () => {
      sshd = await startTestSshd();
      await appendFile(sshd.authorizedKeysFile, `${publicKey}\n`);
    });
    afterAll(async () => {
      await sshd?.stop();
    });

    test('fails the host test and the run with host_key_mismatch until the key is re-pinned', async () => {
      const host = await h.api.post('/hosts', {
        name: 'rekeyed',
        hostname: sshd.host,
        port: sshd.port,
        user: sshd.user,
        ssh_key_id: keyId,
        restic_path: stackEnv().resticBinary,
      });
      const hostId = host.body.data.id;
      const pinned = await h.api.post(`/hosts/${hostId}/test`);
      expect(pinned.body.data.host_key).toMatchObject({ status: 'pinned', fingerprint: sshd.hostKeyFingerprint });
      const oldFingerprint = sshd.hostKeyFingerprint;

      const r = await repo('rekeyed-repo');
      const jobId = await job({ repo_id: r.id, host_id: hostId, source_paths: [await sourceDir('rekeyed-src')] });
      expect((await runToEnd(jobId)).status).toBe('success');

      await sshd.replaceHostKey();
      const test = await h.api.post(`/hosts/${hostId}/test`);
      expect(test.status).toBe(200);
      expect(test.body.data).toMatchObject({
        success: false,
        expected_fingerprint: oldFingerprint,
        host_key: { status: 'mismatch', fingerprint: sshd.hostKeyFingerprint },
        error: { code: 'host_key_mismatch' },
      });
      expect(test.body.data.error.message).toContain(oldFingerprint);
      expect((await h.api.get(`/hosts/${hostId}`)).body.data.host_key_fingerprint).toBe(oldFingerprint);

      const run = await runToEnd(jobId);
      expect(run.status).toBe('failed');
      expect(run.failure.code).toBe('host_key_mismatch');
      expect(run.attempts).toBe(1);

      // The operator accepts the new key explicitly; the next test pins it and runs work again.
      expect((await h.api.patch(`/hosts/${hostId}`, { reset_host_key: true })).body.data.host_key_fingerprint).toBeNull();
      expect((await h.api.post(`/hosts/${hostId}/test`)).body.data.host_key).toMatchObject({ status: 'pinned', fingerprint: sshd.hostKeyFingerprint });
      expect((await runToEnd(jobId)).status).toBe('success');
    });
  });

  test('a run in flight: progress is readable, a second trigger is refused, the password is on no command line', async () => {
    const sshd = stackEnv().sshd;
    const host = await h.api.post('/hosts', { name: 'big', hostname: sshd.host, port: sshd.port, user: sshd.user, ssh_key_id: keyId, restic_path: stackEnv().resticBinary });
    await h.api.post(`/hosts/${host.body.data.id}/test`);
    const r = await repo('big-repo');
    const src = await sourceDir('big-src');
    // Enough incompressible data for restic to take several seconds.
    for (let i = 0; i < 8; i++) await writeFile(join(src, `blob-${i}.bin`), randomBytes(100 * 1024 * 1024));
    const jobId = await job({ repo_id: r.id, host_id: host.body.data.id, source_paths: [src] });

    const seenRestic = new Set<number>();
    let leaked = '';
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
          const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
          const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
          if (cmdline.includes('restic') && cmdline.includes(r.path)) seenRestic.add(Number(pid));
          if (cmdline.includes(password) || environ.includes(password)) leaked = `${pid}: ${cmdline.replace(/\0/g, ' ')}`;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const run = await h.api.post(`/backup-jobs/${jobId}/run`);
    expect(run.status).toBe(202);
    const self = run.body.data.links.self.replace('/api/v1', '');

    const second = await h.api.post(`/backup-jobs/${jobId}/run`);
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'run_in_progress', run_id: run.body.data.id });

    const progress = await waitFor(async () => {
      const current = await h.api.get(self);
      if (current.body.data.status !== 'running') return undefined;
      return current.body.data.progress?.total_bytes > 0 ? current.body.data.progress : undefined;
    }, 'progress of the running backup', 60_000, 100);
    expect(progress.percent_done).toBeGreaterThanOrEqual(0);
    expect(progress.total_bytes).toBeGreaterThan(0);

    const done = await waitFor(async () => {
      const current = await h.api.get(self);
      return current.body.data.status === 'running' || current.body.data.status === 'queued' ? undefined : current.body.data;
    }, 'the big backup to finish');
    watching = false;
    await watcher;
    expect(done.status).toBe('success');
    expect(done.progress).toBeNull();
    expect(done.summary.total_bytes_processed).toBeGreaterThan(800 * 1024 * 1024 - 1);
    expect(seenRestic.size).toBeGreaterThan(0);
    expect(leaked).toBe('');

    // Once finished, the job takes a new run.
    expect((await h.api.post(`/backup-jobs/${jobId}/run?wait=120`)).body.data.status).toBe('success');
  });
});
