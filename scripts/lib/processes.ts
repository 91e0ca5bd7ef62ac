import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

export interface StartProcessOptions {
  /** Short name used in messages (and as the default echo prefix). */
  name: string;
  command: string;
  args?: string[];
  /** Complete environment of the child (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append stdout and stderr to this file (directories are created). */
  logFile?: string;
  /** Also copy every output line to our stdout/stderr, prefixed with this (e.g. `[api]`). */
  echoPrefix?: string;
  /** Delay between SIGTERM and SIGKILL in stop() (default 10 s). */
  stopTimeoutMs?: number;
  /** Signal stop() sends first (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  /** Run as this user/group (root only; e.g. Postgres refuses to run as root). */
  uid?: number;
  gid?: number;
}

export interface ManagedProcess {
  name: string;
  pid: number;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
  /** How it ended, once it has: `code 1`, `signal SIGTERM`. */
  exitDescription(): string | null;
  /** True once stop() was called (an exit after that is expected). */
  readonly stopping: boolean;
  /** SIGTERM to the process, SIGKILL to its process group after the timeout; resolves when it has exited. */
  stop(): Promise<void>;
}

/** Process groups started here and not yet stopped (ids = leader pids); signalled if we exit without stopping them. */
const running = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of running) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  });
}

/**
 * True while process group `pgid` has a live (non-zombie) member. Orphans are re-parented to
 * pid 1, which may reap them slowly, so on Linux zombies are skipped by reading /proc.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
    } catch {
      /* exited while scanning */
    }
  }
  return false;
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([promise.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return result;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* ESRCH: the group is gone */
  }
}

/**
 * Starts a long-running child in its own process group (so stop() also reaches the
 * processes it forks, and a Ctrl-C in the terminal reaches only us, who then stop it in
 * order). Resolves once the process has been spawned; rejects if it cannot be (ENOENT...).
 */
export function startProcess(options: StartProcessOptions): Promise<ManagedProcess> {
  const { name, command, args = [], env = process.env, cwd, logFile, echoPrefix, uid, gid } = options;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const stopSignal = options.stopSignal ?? 'SIGTERM';

  let logFd: number | null = null;
  if (logFile) {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    logFd = fs.openSync(logFile, 'a', 0o600);
  }
  const piped = echoPrefix !== undefined;
  const out = piped ? 'pipe' : (logFd ?? 'inherit');

  const child = spawn(command, args, { cwd, env, uid, gid, detached: true, stdio: ['ignore', out, out] });

  return new Promise<ManagedProcess>((resolve, reject) => {
    let exitDescription: string | null = null;
    let stopping = false;

    child.once('error', (err) => {
      if (logFd !== null) fs.closeSync(logFd);
      reject(new Error(`cannot start ${name} (${command}): ${err.message}`));
    });

    child.once('spawn', () => {
      const pid = child.pid as number;
      running.add(pid);
      installExitHook();

      if (piped) {
        const logStream = logFd !== null ? fs.createWriteStream('', { fd: logFd }) : null;
        const pump = (stream: NodeJS.ReadableStream | null, target: NodeJS.WriteStream): void => {
          if (!stream) return;
          readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
            target.write(`${echoPrefix} ${line}\n`);
            logStream?.write(`${line}\n`);
          });
        };
        pump(child.stdout, process.stdout);
        pump(child.stderr, process.stderr);
        child.once('close', () => logStream?.end());
      } else if (logFd !== null) {
        fs.closeSync(logFd); // the child holds its own copy
      }

      const exited = new Promise<number | null>((resolveExit) => {
        child.once('exit', (code, signal) => {
          // `pid` stays in `running` until stop(): its group may still hold orphans.
          exitDescription = signal ? `signal ${signal}` : `code ${code}`;
          resolveExit(code);
        });
      });

      let stopPromise: Promise<void> | null = null;
      const stop = (): Promise<void> => {
        stopping = true;
        stopPromise ??= (async () => {
          if (exitDescription === null) {
            // The leader first, so it can shut down in order (a worker finishing its activities).
            try {
              process.kill(pid, stopSignal);
            } catch {
              /* exited meanwhile */
            }
            if (!(await settlesWithin(exited, stopTimeoutMs))) {
              process.stderr.write(`[stack] ${name} (pid ${pid}) did not stop within ${stopTimeoutMs} ms; killing it\n`);
              signalGroup(pid, 'SIGKILL');
              await exited;
            }
          }
          // What the leader forked and left in its group (sshd sessions, the program under a
          // tsx wrapper that was killed): the stop signal, then SIGKILL.
          if (groupAlive(pid)) {
            signalGroup(pid, stopSignal);
            const deadline = Date.now() + stopTimeoutMs;
            while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
            signalGroup(pid, 'SIGKILL');
          }
          running.delete(pid);
        })();
        return stopPromise;
      };

      resolve({
        name,
        pid,
        exited,
        exitDescription: () => exitDescription,
        get stopping() {
          return stopping;
        },
        stop,
      });
    });
  });
}
