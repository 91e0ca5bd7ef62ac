import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { info, warn } from './log';
import { TOOL_CACHE } from './paths';
import { which } from './which';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
/** Later tags carry a `replace` directive in go.mod and cannot be `go install`ed. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const RESTIC_MODULE = 'github.com/restic/restic/cmd/restic';
export const RESTIC_VERSION = 'v0.18.1';
/** Oldest restic whose exit codes tell a wrong password / locked / missing repository apart. */
export const RESTIC_MIN_VERSION = '0.18.0';

// ---------------------------------------------------------------------------------------
// Generic cache entry: <cacheDir>/<name>-<version>/<binary>, built at most once at a time.
// ---------------------------------------------------------------------------------------

export interface CachedToolSpec {
  name: string;
  version: string;
  binary: string;
  /** Default: TOOL_CACHE. */
  cacheDir?: string;
  /** Must leave an executable `<outDir>/<binary>`; outDir is a fresh private directory. */
  build(outDir: string): Promise<void>;
  /** How often a waiter looks at the lock (default 1 s). */
  lockPollMs?: number;
  /** A lock older than this is broken even if its owner's pid is alive (pid reuse; default 2 h). */
  staleLockMs?: number;
}

interface LockOwner {
  pid: number;
  host: string;
  createdAt: number;
  token: string;
}

export function cachedToolPath(spec: Pick<CachedToolSpec, 'name' | 'version' | 'binary' | 'cacheDir'>): string {
  return path.join(spec.cacheDir ?? TOOL_CACHE, `${spec.name}-${spec.version}`, spec.binary);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The cached binary if it is there, else null. */
export function lookupCachedTool(spec: Pick<CachedToolSpec, 'name' | 'version' | 'binary' | 'cacheDir'>): string | null {
  const file = cachedToolPath(spec);
  return isExecutable(file) ? file : null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(lockDir: string): Promise<LockOwner | null> {
  try {
    return JSON.parse(await fsp.readFile(path.join(lockDir, 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

/** Why the lock at lockDir is stale (and the token of the owner judged), or null while it looks held. */
async function staleLock(lockDir: string, staleLockMs: number): Promise<{ reason: string; token?: string } | null> {
  const owner = await readOwner(lockDir);
  let mtimeMs: number;
  try {
    mtimeMs = (await fsp.stat(lockDir)).mtimeMs;
  } catch {
    return null; // vanished: the next mkdir will tell
  }
  if (!owner) {
    // Between mkdir and writing owner.json, or a crash right there.
    return Date.now() - mtimeMs > 60_000 ? { reason: 'lock without owner for over a minute' } : null;
  }
  if (owner.host === os.hostname() && !pidAlive(owner.pid)) return { reason: `owner pid ${owner.pid} is gone`, token: owner.token };
  if (Date.now() - owner.createdAt > staleLockMs) {
    return { reason: `lock older than ${Math.round(staleLockMs / 1000)} s`, token: owner.token };
  }
  return null;
}

async function breakLock(lockDir: string, expectedToken: string | undefined): Promise<void> {
  const aside = `${lockDir}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await fsp.rename(lockDir, aside);
  } catch {
    return; // someone else broke or released it
  }
  const moved = await readOwner(aside);
  if (moved?.token !== expectedToken) {
    // It was replaced by a live lock between our check and the rename: put it back.
    await fsp.rename(aside, lockDir).catch(() => undefined);
    return;
  }
  await fsp.rm(aside, { recursive: true, force: true });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Returns the cached binary, building it first if needed. Concurrent callers (processes or
 * not) serialise on a `mkdir` lock next to the entry; the build happens in a private temp
 * dir and the binary is renamed into place, so a reader never sees a partial file and a
 * crashed builder leaves only a stale lock (broken when its pid is gone) behind.
 */
export async function ensureCachedTool(spec: CachedToolSpec): Promise<string> {
  const cacheDir = spec.cacheDir ?? TOOL_CACHE;
  const finalPath = cachedToolPath({ ...spec, cacheDir });
  const lockDir = path.join(cacheDir, `${spec.name}-${spec.version}.lock`);
  const pollMs = spec.lockPollMs ?? 1000;
  const staleLockMs = spec.staleLockMs ?? 2 * 60 * 60 * 1000;
  const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

  await fsp.mkdir(cacheDir, { recursive: true });
  let announcedWait = false;
  for (;;) {
    if (isExecutable(finalPath)) return finalPath;
    try {
      await fsp.mkdir(lockDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const stale = await staleLock(lockDir, staleLockMs);
      if (stale) {
        warn(`breaking stale build lock ${lockDir} (${stale.reason})`);
        await breakLock(lockDir, stale.token);
        continue;
      }
      if (!announcedWait) {
        const owner = await readOwner(lockDir);
        info(`waiting for another process${owner ? ` (pid ${owner.pid})` : ''} to finish building ${spec.name} ${spec.version}`);
        announcedWait = true;
      }
      await sleep(pollMs);
      continue;
    }

    // We hold the lock.
    const owner: LockOwner = { pid: process.pid, host: os.hostname(), createdAt: Date.now(), token };
    await fsp.writeFile(path.join(lockDir, 'owner.json'), JSON.stringify(owner));
    let tmpDir: string | null = null;
    try {
      if (isExecutable(finalPath)) return finalPath; // finished by the previous holder
      tmpDir = await fsp.mkdtemp(path.join(cacheDir, `.build-${spec.name}-${spec.version}-`));
      await spec.build(tmpDir);
      const built = path.join(tmpDir, spec.binary);
      if (!isExecutable(built)) throw new Error(`building ${spec.name} ${spec.version} produced no executable ${spec.binary}`);
      await fsp.mkdir(path.dirname(finalPath), { recursive: true });
      await fsp.rename(built, finalPath);
      return finalPath;
    } finally {
      if (tmpDir) await fsp.rm(tmpDir, { recursive: true, force: true });
      if ((await readOwner(lockDir))?.token === token) await fsp.rm(lockDir, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------
// Go
// ---------------------------------------------------------------------------------------

export function findGo(): string | null {
  return which('go', ['/usr/local/go/bin', path.join(os.homedir(), 'go', 'bin')]);
}

/** `go install <module>@<version>` with GOBIN=outDir, output shown on stderr. */
export function goInstall(goBinary: string, moduleAtVersion: string, outDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(goBinary, ['install', moduleAtVersion], {
      env: { ...process.env, GOBIN: outDir },
      stdio: ['ignore', process.stderr, process.stderr],
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`go install ${moduleAtVersion} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

// ---------------------------------------------------------------------------------------
// Temporal CLI
// ---------------------------------------------------------------------------------------

/** `temporal` from PATH, else the tool cache, else built there with `go install` (~5 min once). */
export async function ensureTemporalCli(): Promise<string> {
  const onPath = which('temporal');
  if (onPath) return onPath;
  const spec = { name: 'temporal', version: TEMPORAL_CLI_VERSION, binary: 'temporal' };
  const cached = lookupCachedTool(spec);
  if (cached) return cached;
  const go = findGo();
  if (!go) {
    throw new Error(
      `the Temporal CLI is needed: put 'temporal' on PATH, set TEMPORAL_ADDRESS to an existing server, or install Go (>= 1.25) so it can be built with go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`,
    );
  }
  return ensureCachedTool({
    ...spec,
    build: async (outDir) => {
      info(
        `building the Temporal CLI ${TEMPORAL_CLI_VERSION} with 'go install' into ${path.dirname(cachedToolPath(spec))} (first time only, takes about 5 minutes)...`,
      );
      await goInstall(go, `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`, outDir);
      info('Temporal CLI built');
    },
  });
}

// ---------------------------------------------------------------------------------------
// restic
// ---------------------------------------------------------------------------------------

/** `restic 0.18.1 compiled with ...` → `0.18.1`, or null. */
export function parseResticVersion(output: string): string | null {
  return /restic\s+v?(\d+\.\d+\.\d+)/.exec(output)?.[1] ?? null;
}

/** Compares dotted numeric versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split('.').map(Number);
  const pb = b.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function resticVersionOf(binary: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(binary, ['version'], { timeout: 10_000 }, (err, stdout) => resolve(err ? null : parseResticVersion(stdout)));
  });
}

async function resticFromPath(reasonPrefix: string): Promise<string> {
  const onPath = which('restic');
  if (!onPath) {
    throw new Error(`${reasonPrefix}, and there is no restic on PATH. Install Go (to build restic ${RESTIC_VERSION}) or set RESTIC_BINARY`);
  }
  const version = await resticVersionOf(onPath);
  if (!version || compareVersions(version, RESTIC_MIN_VERSION) < 0) {
    warn(
      `using ${onPath} (restic ${version ?? 'of unknown version'}); ${RESTIC_MIN_VERSION} or later is expected: older versions exit 1 for a wrong password, a locked and a missing repository alike`,
    );
  }
  return onPath;
}

/** `RESTIC_BINARY`, else the cached pinned build, else build it with Go, else restic from PATH. */
export async function ensureRestic(): Promise<string> {
  const fromEnv = process.env.RESTIC_BINARY;
  if (fromEnv) {
    const resolved = which(fromEnv);
    if (!resolved) throw new Error(`RESTIC_BINARY=${fromEnv} is not an executable file`);
    return resolved;
  }
  const spec = { name: 'restic', version: RESTIC_VERSION, binary: 'restic' };
  const cached = lookupCachedTool(spec);
  if (cached) return cached;
  const go = findGo();
  if (!go) return resticFromPath(`Go is not installed, so restic ${RESTIC_VERSION} cannot be built`);
  try {
    return await ensureCachedTool({
      ...spec,
      build: async (outDir) => {
        info(`building restic ${RESTIC_VERSION} with 'go install' into ${path.dirname(cachedToolPath(spec))} (first time only, takes a few minutes)...`);
        await goInstall(go, `${RESTIC_MODULE}@${RESTIC_VERSION}`, outDir);
        info('restic built');
      },
    });
  } catch (err) {
    if (which('restic')) {
      warn(`building restic failed (${(err as Error).message}); falling back to restic from PATH`);
      return resticFromPath('building restic failed');
    }
    throw err;
  }
}
