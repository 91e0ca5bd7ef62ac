import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/lib/ports';
import { startHarness, type Harness } from '../support/harness';
import { stackEnv } from '../support/stack-env';
import { waitFor } from '../support/wait';

/** An unreachable host is retried with growing delays, a bounded number of times, then fails. */
describe('a backup on an unreachable host', () => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'bcp-e2e-retries-'));
  });
  afterAll(async () => {
    await h?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function unreachableJob(): Promise<number> {
    const sshd = stackEnv().sshd;
    const key = await h.api.post('/ssh-keys', { name: 'retries', host: sshd.host, port: sshd.port, user: sshd.user });
    // A host whose key is pinned up front, on a loopback port where nothing listens.
    const host = await h.api.post('/hosts', {
      name: 'gone',
      hostname: '127.0.0.1',
      port: await freePort(),
      user: sshd.user,
      ssh_key_id: key.body.data.id,
      host_key_fingerprint: sshd.hostKeyFingerprint,
    });
    const repo = await h.api.post('/repos', { name: 'retries', path: join(dir, `repo-${randomBytes(4).toString('hex')}`), password: randomBytes(8).toString('hex'), init: true });
    expect(repo.status).toBe(201);
    await writeFile(join(dir, 'file'), 'x');
    const job = await h.api.post('/backup-jobs', { name: 'retries', repo_id: repo.body.data.id, host_id: host.body.data.id, source_paths: [dir] });
    return job.body.data.id;
  }

  test('is retried with backoff, then fails as host_unreachable', async () => {
    const jobId = await unreachableJob();
    const started = Date.now();
    const run = await h.api.post(`/backup-jobs/${jobId}/run`);
    const self = run.body.data.links.self.replace('/api/v1', '');
    const seenAttempts: { attempt: number; at: number }[] = [];
    const done = await waitFor(
      async () => {
        const current = (await h.api.get(self)).body.data;
        if (seenAttempts.at(-1)?.attempt !== current.attempts) seenAttempts.push({ attempt: current.attempts, at: Date.now() - started });
        return current.status === 'failed' ? current : undefined;
      },
      'the retries to run out',
      240_000,
      500,
    );
    expect(done.failure.code).toBe('host_unreachable');
    expect(done.failure.message).toMatch(/cannot reach/);
    expect(done.attempts).toBe(4);
    // 15 s, 30 s and 60 s between the four attempts.
    const at = (attempt: number) => seenAttempts.find((s) => s.attempt === attempt)?.at ?? NaN;
    expect(at(2) - at(1)).toBeGreaterThanOrEqual(14_000);
    expect(at(3) - at(2)).toBeGreaterThanOrEqual(29_000);
    expect(at(4) - at(3)).toBeGreaterThanOrEqual(59_000);
    expect((await h.api.get(`/backup-jobs/${jobId}`)).body.data.last_status).toBe('failed');
  });

  test('a run whose workflow is terminated in Temporal is closed as workflow_lost, and the job runs again', async () => {
    const jobId = await unreachableJob();
    const run = (await h.api.post(`/backup-jobs/${jobId}/run`)).body.data;
    const self = run.links.self.replace('/api/v1', '');
    await waitFor(async () => ((await h.api.get(self)).body.data.attempts >= 1 ? true : undefined), 'the first attempt');
    await h.services.temporal.workflow.getHandle(run.workflow_id).terminate('operator stopped it');

    const lost = (await h.api.get(self)).body.data;
    expect(lost.status).toBe('failed');
    expect(lost.failure.code).toBe('workflow_lost');
    expect(lost.failure.message).toContain('TERMINATED');
    expect((await h.api.get(`/backup-jobs/${jobId}`)).body.data).toMatchObject({ last_status: 'failed', last_run_id: run.id });
    const again = await h.api.post(`/backup-jobs/${jobId}/run`);
    expect(again.status).toBe(202);
    await h.services.temporal.workflow.getHandle(again.body.data.workflow_id).terminate('test done');
  });
});
