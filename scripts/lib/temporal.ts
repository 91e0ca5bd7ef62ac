import { Connection } from '@temporalio/client';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { info } from './log';
import { DATA_DIR } from './paths';
import { freePort, preferredOrFreePort } from './ports';
import { startProcess, type ManagedProcess } from './processes';
import { ensureTemporalCli } from './tools';

export interface ResolvedTemporal {
  /** host:port of the frontend gRPC service. */
  address: string;
  namespace: string;
  /** Web UI, when known. */
  uiUrl: string | null;
  /** Present when this call started a dev server: stops it. */
  stop?: () => Promise<void>;
  source: 'env' | 'dev-server';
}

export interface ResolveTemporalOptions {
  /** Keep state in `<DATA_DIR>/temporal/temporal.db` and serve the UI; else in-memory and headless. */
  persistent: boolean;
  /** UI port (persistent only): default 8233 if free, else a free port. */
  uiPort?: number;
  /** Try 7233 (and 8233 for the UI) before a free port. Default: `persistent`. */
  preferDefaultPorts?: boolean;
  /** Default: process.env.TEMPORAL_ADDRESS. */
  address?: string;
  /** Default: `<DATA_DIR>/temporal/temporal.db`. */
  dbFile?: string;
  /** Default: `<DATA_DIR>/logs/temporal.log`. */
  logFile?: string;
  /** How long to wait for the dev server to serve (default 60 s). */
  readyTimeoutMs?: number;
}

const HOST = '127.0.0.1';

/**
 * Resolves once the frontend at `address` answers GetSystemInfo and knows `namespace`.
 * Rejects after `timeoutMs`, or early when `abort` settles (the server process exited).
 */
export async function waitForTemporal(
  address: string,
  namespace: string,
  timeoutMs = 60_000,
  abort?: () => string | null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'not tried';
  for (;;) {
    const why = abort?.();
    if (why) throw new Error(`the Temporal dev server exited (${why})`);
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 2000 });
      await connection.workflowService.getSystemInfo({});
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      await connection?.close().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`Temporal at ${address} did not answer within ${timeoutMs} ms: ${lastError}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * `TEMPORAL_ADDRESS` (+ `TEMPORAL_NAMESPACE`, `TEMPORAL_UI_URL`) as is; else starts
 * `temporal server start-dev` on loopback (creating `TEMPORAL_NAMESPACE` if set besides
 * `default`) and waits until it really serves. Search attributes are left to the worker.
 */
export async function resolveTemporal(options: ResolveTemporalOptions): Promise<ResolvedTemporal> {
  const fromEnv = 'address' in options ? options.address : process.env.TEMPORAL_ADDRESS;
  if (fromEnv) {
    return {
      address: fromEnv,
      namespace: process.env.TEMPORAL_NAMESPACE || 'default',
      uiUrl: process.env.TEMPORAL_UI_URL || null,
      source: 'env',
    };
  }

  const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
  const dbFile = options.dbFile ?? path.join(DATA_DIR, 'temporal', 'temporal.db');
  if (options.persistent) {
    const running = await adoptRunningServer(dbFile, namespace);
    if (running) return running;
  }
  const cli = await ensureTemporalCli();
  const preferDefaults = options.preferDefaultPorts ?? options.persistent;
  const port = preferDefaults ? await preferredOrFreePort(HOST, 7233) : await freePort(HOST);
  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(port), '--namespace', namespace, '--log-level', 'warn'];
  let uiUrl: string | null = null;
  if (options.persistent) {
    await fsp.mkdir(path.dirname(dbFile), { recursive: true });
    let uiPort = options.uiPort ?? (preferDefaults ? await preferredOrFreePort(HOST, 8233) : await freePort(HOST));
    if (uiPort === port) uiPort = await freePort(HOST);
    args.push('--db-filename', dbFile, '--ui-port', String(uiPort));
    uiUrl = `http://${HOST}:${uiPort}`;
  } else {
    args.push('--headless');
  }
  const logFile = options.logFile ?? path.join(DATA_DIR, 'logs', 'temporal.log');
  info(`starting the Temporal dev server on ${HOST}:${port}${options.persistent ? '' : ' (in memory)'}; log: ${logFile}`);
  const server: ManagedProcess = await startProcess({
    name: 'temporal',
    command: cli,
    args,
    logFile,
    stopTimeoutMs: 15_000,
  });
  const address = `${HOST}:${port}`;
  try {
    await waitForTemporal(address, namespace, options.readyTimeoutMs ?? 60_000, () => server.exitDescription());
  } catch (err) {
    await server.stop();
    throw new Error(`${(err as Error).message}; see ${logFile}`);
  }
  if (!options.persistent) return { address, namespace, uiUrl, stop: () => server.stop(), source: 'dev-server' };
  await fsp.writeFile(serverFileOf(dbFile), JSON.stringify({ pid: server.pid, address, uiUrl } satisfies ServerFile));
  return { address, namespace, uiUrl, stop: () => stopAndForget(dbFile, () => server.stop()), source: 'dev-server' };
}

/** Which dev server serves a state file: two servers on one SQLite file would corrupt it. */
interface ServerFile {
  pid: number;
  address: string;
  uiUrl: string | null;
}

const serverFileOf = (dbFile: string) => `${dbFile}.server.json`;

async function stopAndForget(dbFile: string, stop: () => Promise<void>): Promise<void> {
  await stop();
  await fsp.rm(serverFileOf(dbFile), { force: true });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A dev server of ours still running on this state file (left behind by a start that was
 * killed) is taken over, never joined by a second one; stopping it then works as for our own.
 */
async function adoptRunningServer(dbFile: string, namespace: string): Promise<ResolvedTemporal | null> {
  const recorded = await fsp.readFile(serverFileOf(dbFile), 'utf8').then((text) => JSON.parse(text) as ServerFile, () => null);
  // After a reboot the pid may be someone else's: only a live `temporal server` counts.
  const command = recorded && alive(recorded.pid) ? await fsp.readFile(`/proc/${recorded.pid}/cmdline`, 'utf8').catch(() => '') : '';
  if (!recorded || !command.includes('server\0start-dev')) return null;
  try {
    await waitForTemporal(recorded.address, namespace, 10_000);
  } catch (err) {
    throw new Error(`a Temporal dev server (pid ${recorded.pid}) holds ${dbFile} but does not answer at ${recorded.address}: stop it first (${(err as Error).message})`);
  }
  info(`taking over the Temporal dev server already running on ${recorded.address} (pid ${recorded.pid}, left by an earlier start)`);
  const stop = async () => {
    process.kill(recorded.pid, 'SIGTERM');
    for (let waited = 0; alive(recorded.pid) && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    if (alive(recorded.pid)) process.kill(recorded.pid, 'SIGKILL');
  };
  return { address: recorded.address, namespace, uiUrl: recorded.uiUrl, stop: () => stopAndForget(dbFile, stop), source: 'dev-server' };
}
