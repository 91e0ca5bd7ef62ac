import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Harness } from './harness';

/**
 * The worker in a process of its own, as in production, on the harness's database and task
 * queue, so a test can kill it mid-work. `env` adds to (or overrides) its environment.
 */
export async function startWorkerProcess(h: Harness, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(resolve('node_modules/.bin/tsx'), ['worker/main.ts'], {
    cwd: resolve(__dirname, '..', '..'),
    detached: true, // its own process group: killing it kills what it runs too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: h.config.databaseUrl,
      TEMPORAL_ADDRESS: h.config.temporal.address,
      TEMPORAL_NAMESPACE: h.config.temporal.namespace,
      TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue,
      SECRET_KEY: h.config.secretKey.toString('base64'),
      // Its readiness line is an info line (its output goes to this pipe, not to the test's).
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await new Promise<void>((ready, failed) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('worker polling task queue')) ready();
      });
      child.once('exit', (code) => failed(new Error(`the worker exited with ${code}: ${output}`)));
    });
    // Requests waiting for a worker's answer are refused until Temporal has seen it poll (a worker on a Temporal of the test's own is not the harness's to wait for).
    if ((env.TEMPORAL_ADDRESS ?? h.config.temporal.address) === h.config.temporal.address) await h.workerPolling();
  } catch (error) {
    await killWorkerProcess(child); // never left running after the test that started it
    throw error;
  }
  return child;
}

/** SIGKILL to the worker's process group: no graceful shutdown, as when a machine dies. */
export function killWorkerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  process.kill(-(child.pid as number), 'SIGKILL');
  return exited;
}
