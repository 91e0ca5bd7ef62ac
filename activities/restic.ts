import type { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../common/failures';
import type { RetentionPolicy } from '../common/retention-policy';
import { typedFailure } from './failure';
import { COMMAND_NOT_FOUND, type Executor } from './executors';

/**
 * How to open one repository: where it is, its password and `-o` options. restic reads the
 * password from stdin, or from `passwordFile` (a private temporary file) for `init`, which
 * asks for it twice.
 */
export interface RepositoryAccess {
  repository: string;
  password: string;
  passwordFile?: string;
  options?: string[];
}

export interface ResticResult {
  exitCode: number;
  /** restic's final `exit_error` message, when it printed one. */
  exitError: string | null;
  /** Non-fatal problems restic reported (unreadable files, skipped paths). */
  warnings: string[];
  /** The last lines of plain stderr, for error messages. */
  stderrTail: string[];
}

export interface RunResticOptions {
  onJson?: (message: Record<string, unknown>) => void;
  onOtherStdout?: (line: string) => void;
  /** Raw stdout, unsplit (then the line callbacks above see none of it). */
  onStdoutChunk?: (chunk: Buffer) => void;
  /** Plain (not JSON) stderr lines, besides being kept for error messages. */
  onOtherStderr?: (line: string) => void;
  env?: Record<string, string>;
  signal?: AbortSignal;
}

const STDERR_TAIL_LINES = 20;
const MAX_WARNINGS = 100;

/** restic's exit codes (0.18+): 3 = snapshot written but some files unreadable; 10/11/12 = repo missing/locked/wrong password. */
export const ResticExit = { ok: 0, fatal: 1, partial: 3, noRepository: 10, locked: 11, wrongPassword: 12 } as const;

export function globalArgs(binary: string, access: RepositoryAccess): string[] {
  // Never the password itself on the command line or in the environment: stdin or a 0600 file.
  const passwordFile = access.passwordFile ? ['--password-file', access.passwordFile] : [];
  return [binary, '-r', access.repository, ...passwordFile, ...(access.options ?? []).flatMap((o) => ['-o', o])];
}

export interface BackupSpec {
  sourcePaths: string[];
  excludes: string[];
  tags: string[];
  hostname: string | null;
}

export function backupArgs(spec: BackupSpec): string[] {
  return [
    'backup',
    '--json',
    ...spec.tags.flatMap((tag) => ['--tag', tag]),
    ...spec.excludes.flatMap((pattern) => ['--exclude', pattern]),
    ...(spec.hostname ? ['--host', spec.hostname] : []),
    '--',
    ...spec.sourcePaths,
  ];
}

/**
 * `restic forget` for a retention policy, limited to the snapshots of one host and set of paths
 * (those of the snapshot a backup just made), so other jobs' snapshots in a shared repository are
 * never touched.
 */
export function forgetPolicyArgs(policy: RetentionPolicy, scope: { hostname: string; paths: string[] }): string[] {
  const counts: [string, number | null][] = [
    ['--keep-last', policy.keepLast], ['--keep-hourly', policy.keepHourly], ['--keep-daily', policy.keepDaily],
    ['--keep-weekly', policy.keepWeekly], ['--keep-monthly', policy.keepMonthly], ['--keep-yearly', policy.keepYearly],
  ];
  return [
    'forget',
    '--json',
    ...counts.flatMap(([flag, n]) => (n ? [flag, String(n)] : [])),
    ...(policy.keepWithin ? ['--keep-within', policy.keepWithin] : []),
    ...policy.keepTags.flatMap((tag) => ['--keep-tag', tag]),
    '--host', scope.hostname,
    ...scope.paths.flatMap((path) => ['--path', path]),
    ...(policy.prune ? ['--prune'] : []),
  ];
}

/** Runs one restic command and gathers its JSON messages, warnings and exit status. */
export async function runRestic(
  exec: Executor,
  binary: string,
  access: RepositoryAccess,
  args: string[],
  options: RunResticOptions = {},
): Promise<ResticResult> {
  const result: ResticResult = { exitCode: 0, exitError: null, warnings: [], stderrTail: [] };
  const warn = (text: string) => {
    if (result.warnings.length < MAX_WARNINGS) result.warnings.push(text);
  };
  result.exitCode = await exec([...globalArgs(binary, access), ...args], {
    stdin: access.passwordFile ? '' : `${access.password}\n`,
    env: { RESTIC_PROGRESS_FPS: '1', ...options.env },
    signal: options.signal,
    onStdoutChunk: options.onStdoutChunk,
    onStdoutLine: (line) => {
      const message = parseJsonObject(line);
      if (!message) return options.onOtherStdout?.(line);
      if (message.message_type === 'error') warn(describeErrorMessage(message));
      else options.onJson?.(message);
    },
    onStderrLine: (line) => {
      const message = parseJsonObject(line);
      if (message?.message_type === 'exit_error') result.exitError = String(message.message ?? '');
      else if (message?.message_type === 'error') warn(describeErrorMessage(message));
      else if (line.trim()) {
        options.onOtherStderr?.(line);
        if (/skipping$|^error: /.test(line.trim())) warn(line.trim());
        result.stderrTail.push(line);
        if (result.stderrTail.length > STDERR_TAIL_LINES) result.stderrTail.shift();
      }
    },
  });
  return result;
}

/** The typed, retry-aware failure for a restic command that did not succeed. */
export function resticFailure(result: ResticResult, what: string): ApplicationFailure {
  const detail = result.exitError ?? result.stderrTail.slice(-3).join('\n');
  const message = (text: string) => `${what}: ${text}${detail ? ` (${detail.replace(/^Fatal: /, '')})` : ''}`;
  switch (result.exitCode) {
    case ResticExit.wrongPassword:
      return typedFailure(FailureType.WrongPassword, message('wrong repository password'));
    case ResticExit.noRepository:
      return typedFailure(FailureType.RepositoryNotFound, message('repository does not exist'));
    case ResticExit.locked:
      return typedFailure(FailureType.RepositoryLocked, message('repository is locked by another process'));
    case COMMAND_NOT_FOUND:
      return typedFailure(FailureType.ResticMissing, message('restic is not installed at the configured path'));
    default:
      return typedFailure(FailureType.ResticFailed, message(`restic exited with code ${result.exitCode}`));
  }
}

/** restic exits 0 for a snapshot id it does not know, only saying "Ignoring ...": that is SnapshotNotFound. */
export function assertSnapshotMatched(result: ResticResult, snapshotId: string): void {
  if (result.stderrTail.some((line) => line.startsWith('Ignoring'))) {
    throw typedFailure(FailureType.SnapshotNotFound, `snapshot ${snapshotId.slice(0, 8)} is not in the repository`);
  }
}

function parseJsonObject(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function describeErrorMessage(message: Record<string, unknown>): string {
  const error = message.error as { message?: string } | undefined;
  const item = typeof message.item === 'string' ? `${message.item}: ` : '';
  // backup nests the text in `error`; check puts it in `message`.
  const text = error?.message ?? (typeof message.message === 'string' ? message.message.trim() : JSON.stringify(message));
  return `${item}${text}`;
}
