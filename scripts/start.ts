/**
 * `npm start`: brings up what is missing (Postgres, Temporal dev server, restic, a secret
 * key), migrates, creates the first admin, runs the API and the worker, and stops all of
 * it in order on Ctrl-C (or when one of them dies).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadSecretKey } from '../common/config';
import { ensureFirstAdmin } from '../db/first-admin';
import { openOrm } from '../db/orm';
import { SecretBox } from '../db/secret-box';
import { verifySecretKey } from '../db/secret-key-check';
import { migrateUp } from '../db/migrate';
import { header, info, redactUrl } from './lib/log';
import { DATA_DIR, PROJECT_ROOT } from './lib/paths';
import { isPortFree } from './lib/ports';
import { resolvePostgres } from './lib/postgres';
import { startProcess, type ManagedProcess } from './lib/processes';
import { resolveTemporal } from './lib/temporal';
import { ensureRestic } from './lib/tools';

const LOG_DIR = path.join(DATA_DIR, 'logs');

// ---------------------------------------------------------------------------------------
// Shutdown: a stack of stop functions, run last-in first-out (API + worker, then Temporal,
// then Postgres). The first SIGINT/SIGTERM stops in order; one arriving more than 3 s later
// (a second Ctrl-C; npm and bootstrap may relay the first one several times) kills.
// ---------------------------------------------------------------------------------------

const stopStack: { name: string; stop: () => Promise<void> }[] = [];
const children: ManagedProcess[] = [];
let shuttingDown: Promise<never> | null = null;
let firstSignalAt = 0;

function onStop(name: string, stop: () => Promise<void>): void {
  stopStack.push({ name, stop });
}

/** The start-up step in progress (settles after its resource's stop function is registered). */
let inFlight: Promise<void> = Promise.resolve();

function shutdown(exitCode: number, reason: string): Promise<never> {
  shuttingDown ??= (async () => {
    info(`${reason}: stopping...`);
    // Let the step in progress finish so what it starts is stopped too; anything started
    // later than this is still killed by the exit hook of processes.ts.
    await Promise.race([inFlight, new Promise((r) => setTimeout(r, 20_000).unref())]);
    while (stopStack.length > 0) {
      const { name, stop } = stopStack.pop() as { name: string; stop: () => Promise<void> };
      try {
        await stop();
        info(`stopped ${name}`);
      } catch (err) {
        info(`stopping ${name} failed: ${(err as Error).message}`);
      }
    }
    process.exit(exitCode);
  })();
  return shuttingDown;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!shuttingDown) {
      firstSignalAt = Date.now();
      void shutdown(0, `${signal} received`);
    } else if (Date.now() - firstSignalAt > 3000) {
      info('second interrupt: killing the remaining processes');
      for (const child of children) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      process.exit(130);
    }
  });
}

/**
 * Runs one start-up step, registering the stop function of what it started (if any); if a
 * shutdown began meanwhile, waits for it (which exits) instead of going on.
 */
async function step<T>(work: Promise<T>, stopOf?: { name: string; get: (r: T) => (() => Promise<void>) | undefined }): Promise<T> {
  const registered = (async () => {
    const result = await work;
    const stop = stopOf?.get(result);
    if (stopOf && stop) onStop(stopOf.name, stop);
    return result;
  })();
  inFlight = registered.then(
    () => undefined,
    () => undefined,
  );
  const result = await registered;
  if (shuttingDown) await shuttingDown;
  return result;
}

// ---------------------------------------------------------------------------------------

/** SECRET_KEY / SECRET_KEY_FILE as given, else `<DATA_DIR>/secret.key`, generated on first start. */
function secretKeyEnv(): Record<string, string> {
  if (process.env.SECRET_KEY) return { SECRET_KEY: process.env.SECRET_KEY };
  if (process.env.SECRET_KEY_FILE) return { SECRET_KEY_FILE: path.resolve(process.env.SECRET_KEY_FILE) };
  const file = path.join(DATA_DIR, 'secret.key');
  fs.mkdirSync(DATA_DIR, { recursive: true });
  try {
    fs.writeFileSync(file, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    info(`generated a development secret key in ${file} (mode 0600).`);
    info('  It encrypts every stored secret (repository passwords, private keys): back it up;');
    info('  without it the stored secrets cannot be decrypted. Set SECRET_KEY or SECRET_KEY_FILE to use your own.');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return { SECRET_KEY_FILE: file };
}

/** Refuses to start with a key that cannot open the secrets already stored in the database. */
async function checkSecretKey(databaseUrl: string, keyEnv: Record<string, string>): Promise<void> {
  const orm = await openOrm(databaseUrl, 1);
  try {
    await verifySecretKey(orm.em.fork(), new SecretBox(loadSecretKey(keyEnv)));
  } finally {
    await orm.close(true);
  }
}

async function waitForHealth(url: string, timeoutMs: number, processes: ManagedProcess[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const dead = processes.find((p) => p.exitDescription() !== null);
    if (dead) throw new Error(`${dead.name} exited during start-up (${dead.exitDescription()})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s (${last})`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function main(): Promise<void> {
  header('backup control plane: starting');
  info(`data directory: ${DATA_DIR}`);

  // The API port is checked first (and again before the API starts), to fail before provisioning.
  const apiHost = process.env.API_HOST || '127.0.0.1';
  const apiPort = process.env.API_PORT ? Number(process.env.API_PORT) : 8080;
  if (!Number.isInteger(apiPort) || apiPort <= 0 || apiPort > 65535) {
    throw new Error(`API_PORT=${process.env.API_PORT} is not a port number`);
  }
  const apiPortTaken = async (): Promise<boolean> => !(await isPortFree(apiHost, apiPort));
  if (await apiPortTaken()) {
    throw new Error(`port ${apiPort} on ${apiHost} is already in use: set API_PORT to a free port (e.g. API_PORT=${apiPort + 1} npm start)`);
  }


  const pg = await step(resolvePostgres({ database: 'backup_control_plane' }), { name: 'embedded Postgres', get: (r) => r.stop });
  const pgWhere = { env: 'DATABASE_URL', local: 'local server', embedded: 'embedded server' }[pg.source];
  info(`Postgres (${pgWhere}): ${redactUrl(pg.url)}`);

  const temporal = await step(resolveTemporal({ persistent: true }), { name: 'Temporal dev server', get: (r) => r.stop });
  info(`Temporal (${temporal.source === 'env' ? 'TEMPORAL_ADDRESS' : 'dev server'}): ${temporal.address}, namespace ${temporal.namespace}`);

  const restic = await step(ensureRestic());
  info(`restic: ${restic}`);

  const secretEnv = secretKeyEnv();

  const applied: unknown = await step(migrateUp(pg.url));
  info(Array.isArray(applied) && applied.length > 0 ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date');
  await step(checkSecretKey(pg.url, secretEnv));
  const admin = await step(ensureFirstAdmin(pg.url));

  if (await step(apiPortTaken())) {
    throw new Error(`port ${apiPort} on ${apiHost} was taken meanwhile: set API_PORT to a free port`);
  }

  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: pg.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    RESTIC_BINARY: restic,
    API_HOST: apiHost,
    API_PORT: String(apiPort),
    ...secretEnv,
  };
  if (temporal.uiUrl) childEnv.TEMPORAL_UI_URL = temporal.uiUrl;
  else delete childEnv.TEMPORAL_UI_URL;

  onStop('API and worker', async () => {
    await Promise.all(children.map((c) => c.stop()));
  });
  for (const [name, entry] of [
    ['api', 'api/server.ts'],
    ['worker', 'worker/main.ts'],
  ] as const) {
    await step(
      startProcess({
        name,
        // Node with tsx's loader: the tsx CLI could SIGKILL a worker still draining (see bootstrap.mjs).
        command: process.execPath,
        args: ['--import', 'tsx', entry],
        env: childEnv,
        cwd: PROJECT_ROOT,
        echoPrefix: `[${name}]`,
        logFile: path.join(LOG_DIR, `${name}.log`),
        stopTimeoutMs: 30_000,
      }).then((child) => {
        children.push(child);
        return child;
      }),
    );
  }
  for (const child of children) {
    void child.exited.then(() => {
      if (!child.stopping && !shuttingDown) void shutdown(1, `${child.name} exited unexpectedly (${child.exitDescription()})`);
    });
  }

  const base = `http://${apiHost.includes(':') ? `[${apiHost}]` : apiHost}:${apiPort}`;
  await step(waitForHealth(`${base}/api/v1/health`, 120_000, children));

  const lines = [
    '',
    'Backup control plane is running.',
    `  API:           ${base}/api/v1`,
    `  Swagger UI:    ${base}/api/v1/docs`,
    `  OpenAPI:       ${base}/api/v1/openapi.json`,
    temporal.uiUrl
      ? `  Temporal UI:   ${temporal.uiUrl}`
      : `  Temporal:      external server at ${temporal.address} (namespace ${temporal.namespace})${temporal.source === 'env' ? '; set TEMPORAL_UI_URL to link its UI' : ''}`,
    `  Logs:          ${LOG_DIR}`,
  ];
  if (admin) {
    lines.push(
      '',
      `  First start: created the admin user "${admin.username}" with an API token.`,
      '  The token is shown only this once; store it now:',
      '',
      `    ${admin.token}`,
      '',
      `  Try: curl -H "Authorization: Bearer ${admin.token}" ${base}/api/v1/me`,
    );
  } else {
    lines.push(
      '',
      '  This database already has users, so no new token was created. Use a token you stored,',
      '  or print a new admin token with: npm run admin-token',
      '',
      `  Try: curl -H "Authorization: Bearer <token>" ${base}/api/v1/me`,
    );
  }
  lines.push('', 'Press Ctrl-C to stop.', '');
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  if (shuttingDown) return;
  process.stderr.write(`[stack] start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  void shutdown(1, 'start-up failed');
});
