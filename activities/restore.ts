import { mkdir, mkdtemp, readdir, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { FailureType } from '../common/failures';
import { BackupJob, Host, Restore, type Repo } from '../db/entities';
import { loadRepository, repositoryPassword, sshTargetForHost, withOpenSsh, withRepositoryAccess, type ResticSession } from './access';
import type { ActivityDeps } from './deps';
import { localExecutor, sshExecutor, type Executor } from './executors';
import { typedFailure } from './failure';
import { whileHeartbeating } from './heartbeat';
import { ResticExit, resticFailure, runRestic, type ResticResult } from './restic';
import { openSsh } from './ssh';
import { withStaleLockRecovery } from './stale-locks';

/** How the files reached the target: restic on the worker, restic on the host, or the worker then rsync. */
export type RestoreTransfer = 'local' | 'on_host' | 'rsync';

export interface RestoreOutcome {
  summary: Record<string, number | string>;
  output: string;
  warnings: string[];
}

const SUMMARY_FIELDS = ['total_files', 'files_restored', 'files_skipped', 'total_bytes', 'bytes_restored', 'bytes_skipped'];

/** A path inside the snapshot as a restic `--include` pattern that matches exactly that path. */
export function literalPattern(path: string): string {
  return path.replace(/[\\*?[]/g, '\\$&');
}

const noSpace = (lines: (string | null)[]) => lines.some((line) => line !== null && /no space left on device/i.test(line));

function diskFull(where: string, detail: string) {
  return typedFailure(FailureType.DiskFull, `the restore target ${where} is full: ${detail}`);
}

/** Restores a snapshot (or some of its paths) to the target a restore row resolved. */
export function restoreActivities(deps: ActivityDeps) {
  return {
    async restoreSnapshot({ restoreId }: { restoreId: number }): Promise<RestoreOutcome> {
      const context = Context.current();
      const em = deps.orm.em.fork();
      const restore = await em.findOne(Restore, restoreId);
      if (!restore?.resolvedTarget) throw typedFailure(FailureType.InvalidConfiguration, `restore ${restoreId} has no target`);
      await em.nativeUpdate(Restore, { id: restoreId }, { attempts: context.info.attempt });
      const repo = await loadRepository(deps, restore.repoId);
      const host = restore.hostId === null ? null : await em.findOne(Host, restore.hostId, { populate: ['sshKey'] });
      if (restore.hostId !== null && !host) throw typedFailure(FailureType.InvalidConfiguration, `host ${restore.hostName} no longer exists`);

      const run = new RestoreRun(deps, restore, repo, restore.resolvedTarget);
      return whileHeartbeating(() => run.progress, async () => {
        const parts = restore.include.length > 0 ? restore.include : [null];
        const sizes = await Promise.all(parts.map((part) => run.bytesIn(part)));
        if (!host) {
          await mkdir(run.target, { recursive: true, mode: 0o700 });
          await run.preflight(sizes.reduce((a, b) => a + b, 0), await freeLocalBytes(run.target), run.target);
          await run.onWorker(run.target, restore.include);
          return run.outcome('local');
        }
        return run.onHost(host, sizes);
      });
    },
  };
}

/** One restore's state while it runs: its progress, warnings and the restic results of its parts. */
class RestoreRun {
  progress: Record<string, unknown> | undefined;
  readonly warnings: string[] = [];
  /** restic's summary of each part restored. */
  private readonly summaries: Record<string, unknown>[] = [];

  constructor(
    private readonly deps: ActivityDeps,
    private readonly restore: Restore,
    private readonly repo: Repo,
    readonly target: string,
  ) {}

  /** Bytes of the files under a path of the snapshot (the whole snapshot for null), from `restic ls`. */
  async bytesIn(path: string | null): Promise<number> {
    let bytes = 0;
    let nodes = 0;
    const result = await withRepositoryAccess(this.repo, this.deps.secrets, (access) =>
      runRestic(localExecutor, this.deps.resticBinary, access, ['ls', '--json', '--recursive', '--no-lock', this.restore.snapshotId, ...(path ? [path] : [])], {
        onJson: (message) => {
          if (message.message_type !== 'node') return;
          nodes++;
          if (message.type === 'file' && typeof message.size === 'number') bytes += message.size;
        },
      }),
    );
    if (result.exitCode !== 0) throw resticFailure(result, 'listing the snapshot failed');
    if (path && nodes === 0) throw typedFailure(FailureType.PathNotFound, `${path} is not in snapshot ${this.restore.snapshotId.slice(0, 8)}`);
    return bytes;
  }

  /** Refuses to start when the target cannot hold what is restored: better than half a restore. */
  async preflight(needed: number, free: number, where: string): Promise<void> {
    if (needed > free) throw diskFull(where, `restoring needs ${needed} bytes and only ${free} are free`);
  }

  /** `restic restore` with a session (on the worker, or on the host over SSH) into `target`. */
  async restic(session: ResticSession, target: string, includes: string[]): Promise<ResticResult> {
    const args = ['restore', this.restore.snapshotId, '--target', target, '--json', ...includes.flatMap((path) => ['--include', literalPattern(path)])];
    const result = await withStaleLockRecovery({ deps: this.deps, session, repoId: this.repo.id, operation: 'restore', warnings: this.warnings }, () =>
      runRestic(session.exec, session.binary, session.access, args, {
        signal: Context.current().cancellationSignal,
        onJson: (message) => {
          if (message.message_type === 'status') this.progress = statusProgress(message);
          else if (message.message_type === 'summary') this.summaries.push(message);
        },
      }),
    );
    if (noSpace([result.exitError, ...result.warnings, ...result.stderrTail])) throw diskFull(target, result.exitError ?? result.warnings[0] ?? 'no space left on device');
    if (result.exitCode !== 0) throw resticFailure(result, 'restore failed');
    this.warnings.push(...result.warnings);
    return result;
  }

  /** Restores on the worker, into a local directory. */
  onWorker(target: string, includes: string[]): Promise<ResticResult> {
    return withRepositoryAccess(this.repo, this.deps.secrets, (access) => this.restic({ exec: localExecutor, binary: this.deps.resticBinary, access }, target, includes));
  }

  /**
   * Restores onto a host: with restic on the host when it can open the repository there, else
   * through the worker, one include path at a time, with rsync over SSH.
   */
  async onHost(host: Host, sizes: number[]): Promise<RestoreOutcome> {
    const { client } = await openSsh(sshTargetForHost(host, this.deps.secrets, { requirePinnedKey: true }));
    try {
      const exec = sshExecutor(client);
      await this.preflight(sizes.reduce((a, b) => a + b, 0), await freeRemoteBytes(exec, this.target), `${host.name}:${this.target}`);
      const session = await this.hostSession(exec, host);
      if (session) {
        await this.restic(session, this.target, this.restore.include);
        return this.outcome('on_host');
      }
    } finally {
      client.end();
    }
    const parts = this.restore.include.length > 0 ? this.restore.include.map((path) => [path]) : [[]];
    await withOpenSsh(host, this.deps.secrets, async (ssh) => {
      for (const [i, includes] of parts.entries()) {
        const staging = await mkdtemp(join(tmpdir(), 'bcp-restore-'));
        try {
          await this.preflight(sizes[i] ?? 0, await freeLocalBytes(staging), `the worker's staging directory ${staging}`);
          await this.onWorker(staging, includes);
          await rsync(ssh, staging, host, this.target);
        } finally {
          await rm(staging, { recursive: true, force: true });
        }
      }
    });
    return this.outcome('rsync');
  }

  /**
   * restic on the host against the path it knows the repository by (its backup job's, else the
   * repository's own), if the host backs up into the repository and restic there opens it; null
   * otherwise, and the restore goes through the worker. sftp and rclone repositories need
   * credentials only the worker holds.
   */
  private async hostSession(exec: Executor, host: Host): Promise<ResticSession | null> {
    // Only a host that backs up into the repository is given its password.
    const jobs = await this.deps.orm.em.fork().find(BackupJob, { repo: this.repo.id, host: host.id }, { orderBy: { id: 'asc' } });
    if (jobs.length === 0) {
      this.warnings.push(`${host.name} does not back up into this repository, so restic there is not given its password: restored through the worker and rsync`);
      return null;
    }
    const repository = jobs.find((job) => job.remoteRepoPath)?.remoteRepoPath ?? this.repo.path;
    if (/^(sftp|rclone):/.test(repository)) return null;
    const session = { exec, binary: host.resticPath, access: { repository, password: repositoryPassword(this.repo, this.deps.secrets) } };
    const probe = await runRestic(exec, host.resticPath, session.access, ['cat', 'config', '--no-lock'], { onOtherStdout: () => undefined });
    if (probe.exitCode === 0) return session;
    if (probe.exitCode === ResticExit.wrongPassword) throw resticFailure(probe, `restic on ${host.name} cannot open the repository`);
    const reason = probe.exitError ?? probe.stderrTail.at(-1) ?? `exit code ${probe.exitCode}`;
    this.warnings.push(`restic on ${host.name} cannot open ${repository} (${reason.replace(/^Fatal: /, '')}): restored through the worker and rsync`);
    return null;
  }

  outcome(transfer: RestoreTransfer): RestoreOutcome {
    const summary: Record<string, number | string> = { transfer };
    for (const part of this.summaries) {
      for (const field of SUMMARY_FIELDS) if (typeof part[field] === 'number') summary[field] = ((summary[field] as number | undefined) ?? 0) + (part[field] as number);
    }
    const where = this.restore.hostName ? `${this.restore.hostName}:${this.target}` : this.target;
    const output = `restored ${summary.files_restored ?? 0} files and directories (${summary.bytes_restored ?? 0} bytes) of snapshot ${this.restore.snapshotId.slice(0, 8)} into ${where} (${transfer})`;
    return { summary, output, warnings: this.warnings };
  }
}

/** restic restore's status message in the shape runs show progress in. */
function statusProgress(message: Record<string, unknown>): Record<string, unknown> {
  return {
    percent_done: message.percent_done ?? 0,
    total_files: message.total_files,
    files_done: message.files_restored,
    total_bytes: message.total_bytes,
    bytes_done: message.bytes_restored,
    seconds_elapsed: message.seconds_elapsed,
  };
}

async function freeLocalBytes(path: string): Promise<number> {
  const stats = await statfs(path);
  return stats.bavail * stats.bsize;
}

/** Creates the target on the host and reads its free space (`df -Pk`: POSIX output, 1024-byte blocks). */
async function freeRemoteBytes(exec: Executor, target: string): Promise<number> {
  const errors: string[] = [];
  if ((await exec(['mkdir', '-p', '-m', '700', '--', target], { onStderrLine: (line) => errors.push(line) })) !== 0) {
    throw typedFailure(FailureType.InvalidConfiguration, `cannot create the restore target ${target}: ${errors.join(' ')}`);
  }
  const lines: string[] = [];
  const code = await exec(['df', '-Pk', '--', target], { onStdoutLine: (line) => lines.push(line) });
  const available = Number(lines.at(-1)?.trim().split(/\s+/)[3]);
  return code === 0 && Number.isFinite(available) ? available * 1024 : Number.POSITIVE_INFINITY;
}

/**
 * Copies a staged tree to the host: rsync over OpenSSH with the pinned host key; arguments are
 * not re-parsed remotely. The staging directory's entries are sent, not the directory itself,
 * so the target keeps its own mode and owner (it may be `/`).
 */
async function rsync(ssh: string[], staging: string, host: Host, target: string): Promise<void> {
  const entries = (await readdir(staging)).map((name) => join(staging, name));
  if (entries.length === 0) return;
  const errors: string[] = [];
  const address = host.hostname.includes(':') ? `[${host.hostname}]` : host.hostname;
  const code = await localExecutor(
    ['rsync', '-a', '--protect-args', '-e', ssh.join(' '), '--', ...entries, `${host.user}@${address}:${target}/`],
    { onStderrLine: (line) => errors.push(line), signal: Context.current().cancellationSignal },
  );
  if (code === 0) return;
  const detail = errors.slice(-3).join(' ') || `exit code ${code}`;
  if (noSpace(errors)) throw diskFull(`${host.name}:${target}`, detail);
  throw typedFailure(code === 127 ? FailureType.InvalidConfiguration : FailureType.SshError, `rsync to ${host.name} failed: ${detail}`);
}
