import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { FailureType } from '../common/failures';
import { CopyJob, OperationRun } from '../db/entities';
import { SecretPurpose } from '../db/secret-box';
import { withOpenSsh, withPasswordFile, withRepositoryAccess } from './access';
import type { ActivityDeps } from './deps';
import { localExecutor } from './executors';
import { typedFailure } from './failure';
import { whileHeartbeating } from './heartbeat';
import { ResticExit, resticFailure, runRestic, type RepositoryAccess } from './restic';

export interface CopyOutcome {
  snapshots_copied: number;
  snapshots_skipped: number;
  /** Whether this run initialised the destination. */
  initialised: boolean;
  output: string[];
}

const OUTPUT_LINES = 50;

/** `restic copy` of a copy job, on the worker. */
export function copyActivities(deps: ActivityDeps) {
  return {
    /**
     * Copies the snapshots the destination lacks (restic skips those it has), or one snapshot,
     * limited to the job's hosts and tags. Both passwords reach restic in private 0600 files,
     * rclone's configuration too; all are removed afterwards.
     */
    async copySnapshots({ runId, jobId, snapshotId }: { runId: string; jobId: number; snapshotId: string | null }): Promise<CopyOutcome> {
      const em = deps.orm.em.fork();
      const job = await em.findOne(CopyJob, jobId, { populate: ['sourceRepo', 'sourceRepo.sshHost', 'sourceRepo.sshHost.sshKey', 'destHost', 'destHost.sshKey'] });
      if (!job) throw typedFailure(FailureType.InvalidConfiguration, `copy job ${jobId} no longer exists`);
      if (!job.destPasswordSecret) throw typedFailure(FailureType.InvalidConfiguration, `copy job ${job.name} has no destination password`);
      await em.nativeUpdate(OperationRun, { id: runId }, { attempts: Context.current().info.attempt });
      const destPassword = deps.secrets.open(job.destPasswordSecret, SecretPurpose.copyDestPassword);
      const rcloneConfig = job.rcloneConfigSecret ? deps.secrets.open(job.rcloneConfigSecret, SecretPurpose.rcloneConfig) : null;

      return withRepositoryAccess(job.sourceRepo, deps.secrets, (source) =>
        withDestinationOptions(deps, job, source.options ?? [], (options) =>
          withPasswordFile(source, (from) =>
            withPasswordFile({ repository: job.destPath, password: destPassword, options }, (dest) =>
              withRcloneConfig(rcloneConfig, (env) => copy(deps, { job, from, dest, env, snapshotId })),
            ),
          ),
        ),
      );
    },
  };
}

interface CopyPlan {
  job: CopyJob;
  from: RepositoryAccess;
  dest: RepositoryAccess;
  env: Record<string, string>;
  snapshotId: string | null;
}

async function copy(deps: ActivityDeps, { job, from, dest, env, snapshotId }: CopyPlan): Promise<CopyOutcome> {
  const exec = localExecutor;
  const fromArgs = ['--from-repo', from.repository, '--from-password-file', from.passwordFile as string];
  const filters = [...job.filterHosts.flatMap((host) => ['--host', host]), ...job.filterTags.flatMap((tag) => ['--tag', tag])];

  // Never initialised because it merely failed to open: only a destination restic says is missing.
  let initialised = false;
  const opened = await runRestic(exec, deps.resticBinary, dest, ['cat', 'config', '--no-lock'], { env, onOtherStdout: () => undefined });
  if (opened.exitCode === ResticExit.noRepository && job.initDestination) {
    const init = await runRestic(exec, deps.resticBinary, dest, ['init', ...fromArgs, '--copy-chunker-params'], { env });
    if (init.exitCode !== 0) throw resticFailure(init, 'initialising the destination failed');
    initialised = true;
  } else if (opened.exitCode !== 0) {
    throw resticFailure(opened, 'opening the destination failed');
  }

  const candidates: string[] = [];
  const listed = await runRestic(exec, deps.resticBinary, from, ['snapshots', '--json', '--no-lock', ...filters, ...(snapshotId ? [snapshotId] : [])], {
    env,
    onOtherStdout: (line) => candidates.push(line),
  });
  if (listed.exitCode !== 0) throw resticFailure(listed, 'listing the source snapshots failed');
  const considered = (JSON.parse(candidates.join('\n') || '[]') as unknown[]).length;
  if (snapshotId && considered === 0) throw typedFailure(FailureType.SnapshotNotFound, `snapshot ${snapshotId} is not in the source repository (or not of the job's hosts and tags)`);

  const output: string[] = [];
  let copied = 0;
  const result = await whileHeartbeating(
    () => ({ snapshots_copied: copied }),
    () =>
      runRestic(exec, deps.resticBinary, dest, ['copy', ...fromArgs, ...filters, ...(snapshotId ? [snapshotId] : [])], {
        env,
        onOtherStdout: (line) => {
          if (/^snapshot [0-9a-f]+ saved$/.test(line.trim())) copied++;
          if (line.trim() && !line.startsWith('[')) output.push(line.trim());
          if (output.length > OUTPUT_LINES) output.shift();
        },
      }),
  );
  if (result.exitCode !== 0) throw resticFailure(result, 'copy failed');
  return { snapshots_copied: copied, snapshots_skipped: considered - copied, initialised, output };
}

/**
 * restic's `-o` options hold for both repositories of a copy: the source's, or for an `sftp:`
 * destination the OpenSSH command that reaches its host (the API refuses two sftp sides).
 */
function withDestinationOptions<T>(deps: ActivityDeps, job: CopyJob, sourceOptions: string[], use: (options: string[]) => Promise<T>): Promise<T> {
  const host = job.destHost;
  if (!job.destPath.startsWith('sftp:')) return use(sourceOptions);
  if (!host) throw typedFailure(FailureType.InvalidConfiguration, `copy job ${job.name} has an sftp: destination but no dest_host_id`);
  return withOpenSsh(host, deps.secrets, (ssh) => use([`sftp.command=${[...ssh, `${host.user}@${host.hostname}`, '-s', 'sftp'].join(' ')}`]));
}

/** RCLONE_CONFIG for restic's rclone backend: the job's configuration in a private file, removed afterwards. */
async function withRcloneConfig<T>(config: string | null, use: (env: Record<string, string>) => Promise<T>): Promise<T> {
  if (config === null) return use({});
  const dir = await mkdtemp(join(tmpdir(), 'bcp-rclone-'));
  try {
    const file = join(dir, 'rclone.conf');
    await writeFile(file, config, { mode: 0o600 });
    return await use({ RCLONE_CONFIG: file });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
