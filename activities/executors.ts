import { spawn } from 'node:child_process';
import type { Client } from 'ssh2';
import { lineSplitter } from './lines';

export interface ExecOptions {
  /** Written to the command's stdin, then stdin is closed: how secrets reach restic. */
  stdin?: string;
  env?: Record<string, string>;
  onStdoutLine?: (line: string) => void;
  /** Raw stdout instead of lines, for output that is one huge line (a restic tree blob). */
  onStdoutChunk?: (chunk: Buffer) => void;
  onStderrLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** Runs an argv (never through a shell locally) and resolves with its exit code. */
export type Executor = (argv: string[], options: ExecOptions) => Promise<number>;

/** Exit code used when the program itself could not be started, as a shell would report it. */
export const COMMAND_NOT_FOUND = 127;

/** Variables passed to local commands: the worker's own environment holds secrets and stays out. */
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'XDG_CACHE_HOME', 'RESTIC_CACHE_DIR', 'RCLONE_CONFIG'];

export const localExecutor: Executor = (argv, options) =>
  new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    if (!command) return reject(new Error('empty command'));
    const env: Record<string, string> = {};
    for (const name of INHERITED_ENV) if (process.env[name]) env[name] = process.env[name] as string;
    const child = spawn(command, args, { env: { ...env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
    const out = lineSplitter((l) => options.onStdoutLine?.(l));
    const err = lineSplitter((l) => options.onStderrLine?.(l));
    child.stdout.on('data', (c: Buffer) => (options.onStdoutChunk ? options.onStdoutChunk(c) : out.push(c)));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined); // the command may exit before reading stdin
    child.stdin.end(options.stdin ?? '');
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') resolve(COMMAND_NOT_FOUND);
      else reject(e);
    });
    child.on('close', (code, signal) => {
      out.end();
      err.end();
      if (options.signal?.aborted) reject(options.signal.reason ?? new Error('aborted'));
      else resolve(code ?? (signal ? 128 : 1));
    });
  });

/** Quotes one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Runs an argv on the far side of an SSH connection; the remote login shell parses the quoted line. */
export function sshExecutor(client: Client): Executor {
  return (argv, options) =>
    new Promise((resolve, reject) => {
      const envPrefix = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
      const command = [...(envPrefix.length ? ['env', ...envPrefix] : []), ...argv.map(shellQuote)].join(' ');
      client.exec(command, (error, stream) => {
        if (error) return reject(error);
        const out = lineSplitter((l) => options.onStdoutLine?.(l));
        const err = lineSplitter((l) => options.onStderrLine?.(l));
        let exitCode: number | null = null;
        const onAbort = () => {
          stream.signal('TERM');
          stream.close();
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (c: Buffer) => (options.onStdoutChunk ? options.onStdoutChunk(c) : out.push(c)));
        stream.stderr.on('data', (c: Buffer) => err.push(c));
        stream.on('exit', (code: number | null) => {
          exitCode = code;
        });
        stream.on('close', () => {
          out.end();
          err.end();
          options.signal?.removeEventListener('abort', onAbort);
          if (options.signal?.aborted) reject(options.signal.reason ?? new Error('aborted'));
          else resolve(exitCode ?? 255);
        });
        stream.end(options.stdin ?? '');
      });
    });
}
