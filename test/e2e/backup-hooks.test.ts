import type { ChildProcess } from 'node:child_process';
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { restic } from '../support/restic';
import { stackEnv } from '../support/stack-env';
import { waitFor } from '../support/wait';
import { killWorkerProcess, startWorkerProcess } from '../support/worker-process';

/**
 * Pre and post hooks of backup jobs, with the worker in its own process (as in production) so
 * that it can be killed in the middle of a run. restic is real restic behind a wrapper that
 * holds `backup` until a gate file exists and logs when it starts.
 */
let h: Harness;
let dir: string;
let hook: string;
let hookLog: string;
let gate: string;
let timeline: string;
let wrapper: string;
let worker: ChildProcess | null = null;
const password = 'hooks-test-pw';

const startWorker = () => startWorkerProcess(h, { RESTIC_BINARY: wrapper });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-hooks-'));
  hook = join(dir, 'hook');
  hookLog = join(dir, 'hook.log');
  gate = join(dir, 'gate');
  timeline = join(dir, 'timeline');
  wrapper = join(dir, 'restic');
  await writeFile(gate, '');
  await writeFile(
    hook,
    `#!/bin/sh
printf '%s|%s|%s|%s\\n' "$BCP_HOOK_PHASE" "$BCP_RUN_STATUS" "$BCP_SNAPSHOT_ID" "$*" >> ${hookLog}
if [ "$1" = fail ]; then echo "the hook says no" >&2; exit 3; fi
echo "hook $BCP_HOOK_PHASE done"
`,
  );
  await writeFile(
    wrapper,
    `#!/bin/sh
for arg in "$@"; do if [ "$arg" = backup ]; then
  echo waiting >> ${timeline}; while [ ! -e ${gate} ]; do sleep 0.05; done; echo backup >> ${timeline}; break
fi; done
exec ${stackEnv().resticBinary} "$@"
`,
  );
  await Promise.all([chmod(hook, 0o755), chmod(wrapper, 0o755)]);
  h = await startHarness({ worker: false, resticBinary: wrapper });
  expect((await h.api.put('/settings/hook_allowed_commands', { value: [hook] })).status).toBe(200);
  worker = await startWorker();
}, 120_000);
afterAll(async () => {
  if (worker && worker.exitCode === null) await killWorkerProcess(worker);
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function localJob(hooks: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const name = unique();
  const source = join(dir, `src-${name}`);
  await mkdir(source);
  await writeFile(join(source, 'file'), name);
  const path = join(dir, `repo-${name}`);
  const repo = await h.api.post('/repos', { name: `repo-${name}`, path, password, init: true });
  const job = await h.api.post('/backup-jobs', { name: `job-${name}`, repo_id: repo.body.data.id, source_paths: [source], ...hooks, ...extra });
  expect(job.status).toBe(201);
  return { id: job.body.data.id as number, path };
}

const runToEnd = async (jobId: number) => (await h.api.post(`/backup-jobs/${jobId}/run?wait=120`)).body.data;
const logged = async () => (existsSync(hookLog) ? (await readFile(hookLog, 'utf8')).trim().split('\n') : []);

beforeEach(async () => {
  await rm(hookLog, { force: true });
  await writeFile(timeline, '');
});

test('pre and post hooks run around the backup, as an argv (no shell), with the run\u2019s variables', async () => {
  const job = await localJob({ pre_hook_command: [hook, 'two words', '$HOME', "it's; rm -rf /"], post_hook_command: [hook, 'post'] });
  const run = await runToEnd(job.id);
  expect(run).toMatchObject({ status: 'success', failure: null });
  expect(await logged()).toEqual([`pre|||two words $HOME it's; rm -rf /`, `post|success|${run.snapshot_id}|post`]);
  expect(run.hooks).toEqual({ pre: { exit_code: 0, output: 'hook pre done' }, post: { exit_code: 0, output: 'hook post done' } });
});

test('a failing pre hook stops the run before restic starts, and the post hook still runs', async () => {
  const job = await localJob({ pre_hook_command: [hook, 'fail'], post_hook_command: [hook, 'cleanup'] });
  const run = await runToEnd(job.id);
  expect(run).toMatchObject({ status: 'failed', failure: { code: 'pre_hook_failed', message: 'the pre hook exited with code 3' }, snapshot_id: null });
  expect(run.hooks).toEqual({ pre: { exit_code: 3, output: 'the hook says no' }, post: { exit_code: 0, output: 'hook post done' } });
  expect(await logged()).toEqual(['pre|||fail', 'post|failed||cleanup']);
  expect(await readFile(timeline, 'utf8')).toBe('');
  expect(JSON.parse(restic(job.path, password, ['snapshots', '--json', '--no-lock']).stdout)).toEqual([]);
});

test('a failing post hook is a warning on a successful run', async () => {
  const job = await localJob({ post_hook_command: [hook, 'fail'] });
  const run = await runToEnd(job.id);
  expect(run).toMatchObject({ status: 'success', warnings: ['the post hook exited with code 3'], hooks: { post: { exit_code: 3 } } });
  expect(run.hooks).not.toHaveProperty('pre');
});

test('programs outside the allow-list are refused when saved, and when run after the list changed', async () => {
  const repo = await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, `r-${unique()}`), password });
  const base = { name: `job-${unique()}`, repo_id: repo.body.data.id, source_paths: ['/srv'] };
  expectFieldError(await h.api.post('/backup-jobs', { ...base, pre_hook_command: ['/bin/sh', '-c', 'id'] }), 'pre_hook_command');
  expectFieldError(await h.api.post('/backup-jobs', { ...base, post_hook_command: ['relative/hook'] }), 'post_hook_command');
  expectFieldError(await h.api.post('/backup-jobs', { ...base, pre_hook_command: [] }), 'pre_hook_command');

  const job = await localJob({ pre_hook_command: [hook, 'pre'] });
  expect((await h.api.put('/settings/hook_allowed_commands', { value: [] })).status).toBe(200);
  try {
    const run = await runToEnd(job.id);
    expect(run).toMatchObject({ status: 'failed', failure: { code: 'hook_not_allowed' } });
    expect(await logged()).toEqual([]);
  } finally {
    await h.api.put('/settings/hook_allowed_commands', { value: [hook] });
  }
});

test('the post hook runs even when the worker dies during the backup', async () => {
  const job = await localJob({ pre_hook_command: [hook, 'freeze'], post_hook_command: [hook, 'thaw'] });
  await rm(gate);
  try {
    const started = await h.api.post(`/backup-jobs/${job.id}/run`);
    expect(started.status).toBe(202);
    await waitFor(async () => ((await readFile(timeline, 'utf8')).includes('waiting') ? true : undefined), 'the backup to start');
    expect(await logged()).toEqual(['pre|||freeze']);
    await killWorkerProcess(worker as ChildProcess);
    worker = await startWorker();
  } finally {
    await writeFile(gate, '');
  }
  const run = await waitFor(async () => {
    const runs = await h.api.get(`/backup-jobs/${job.id}/runs`);
    const latest = runs.body.data[0];
    return latest && latest.status !== 'running' && latest.status !== 'queued' ? latest : undefined;
  }, 'the run to finish after the worker came back', 150_000, 500);
  expect(run).toMatchObject({ status: 'success', attempts: 2 });
  expect(await logged()).toEqual(['pre|||freeze', `post|success|${run.snapshot_id}|thaw`]);
  expect(JSON.parse(restic(job.path, password, ['snapshots', '--json', '--no-lock']).stdout).map((s: { id: string }) => s.id)).toEqual([run.snapshot_id]);
});

describe('a job on a host', () => {
  test('runs its hooks on the host over SSH', async () => {
    const sshd = stackEnv().sshd;
    const key = await h.api.post('/ssh-keys', { name: `key-${unique()}`, host: sshd.host, port: sshd.port, user: sshd.user });
    await appendFile(sshd.authorizedKeysFile, `${key.body.data.public_key}\n`);
    const host = await h.api.post('/hosts', { name: `host-${unique()}`, hostname: sshd.host, port: sshd.port, user: sshd.user, ssh_key_id: key.body.data.id, restic_path: wrapper });
    expect((await h.api.post(`/hosts/${host.body.data.id}/test`)).body.data.success).toBe(true);
    const job = await localJob({ pre_hook_command: [hook, 'remote pre', '$(id)'], post_hook_command: [hook, 'remote post'] }, { host_id: host.body.data.id });
    const run = await runToEnd(job.id);
    expect(run).toMatchObject({ status: 'success', host_id: host.body.data.id });
    expect(await logged()).toEqual(['pre|||remote pre $(id)', `post|success|${run.snapshot_id}|remote post`]);
  });
});
