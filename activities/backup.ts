import { Context } from '@temporalio/activity';
import { FailureType } from '../common/failures';
import type { RetentionPolicy } from '../common/retention-policy';
import { BackupJob, BackupJobRun, retentionPolicyOf } from '../db/entities';
import { withResticSession } from './access';
import type { ActivityDeps } from './deps';
import { typedFailure } from './failure';
import { whileHeartbeating } from './heartbeat';
import { backupArgs, ResticExit, resticFailure, runRestic } from './restic';
import { withStaleLockRecovery } from './stale-locks';

/** What a run of a job does besides the backup, as the job stands when the run starts. */
export interface BackupPlan {
  retention: RetentionPolicy | null;
  preHook: string[] | null;
  postHook: string[] | null;
}

export interface BackupOutcome {
  snapshotId: string;
  summary: Record<string, number>;
  warnings: string[];
}

const PROGRESS_FIELDS = ['percent_done', 'total_files', 'files_done', 'total_bytes', 'bytes_done', 'seconds_elapsed', 'seconds_remaining', 'current_files'];
const SUMMARY_FIELDS = [
  'files_new', 'files_changed', 'files_unmodified', 'dirs_new', 'dirs_changed', 'dirs_unmodified',
  'data_added', 'data_added_packed', 'total_files_processed', 'total_bytes_processed',
];

/** The first protected path a backup of `sources` would read, if any. */
export function protectedPathIn(sources: string[], protectedPaths: string[]): string | null {
  const covers = (source: string, path: string) => {
    const dir = source.endsWith('/') ? source : `${source}/`;
    return path === source || path.startsWith(dir);
  };
  return protectedPaths.find((path) => sources.some((source) => covers(source, path))) ?? null;
}

function pick(message: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  return Object.fromEntries(fields.filter((f) => message[f] !== undefined).map((f) => [f, message[f]]));
}

/** Runs `restic backup` for one job, locally or on the job's host, heartbeating restic's progress. */
export function backupActivities(deps: ActivityDeps) {
  return {
    async planBackupRun({ jobId }: { jobId: number }): Promise<BackupPlan> {
      const job = await deps.orm.em.fork().findOne(BackupJob, jobId);
      if (!job) throw typedFailure(FailureType.InvalidConfiguration, `backup job ${jobId} no longer exists`);
      return { retention: retentionPolicyOf(job), preHook: job.preHookCommand, postHook: job.postHookCommand };
    },

    async runBackup({ runId, jobId }: { runId: string; jobId: number }): Promise<BackupOutcome> {
      const context = Context.current();
      const em = deps.orm.em.fork();
      const job = await em.findOne(BackupJob, jobId, {
        populate: ['repo', 'repo.sshHost', 'repo.sshHost.sshKey', 'host', 'host.sshKey'],
      });
      if (!job) throw typedFailure(FailureType.InvalidConfiguration, `backup job ${jobId} no longer exists`);
      const exposed = job.host ? null : protectedPathIn(job.sourcePaths, deps.protectedPaths);
      if (exposed) throw typedFailure(FailureType.InvalidConfiguration, `a source path would back up ${exposed}, which holds the control plane's secret key`);
      await em.nativeUpdate(BackupJobRun, { id: runId }, { attempts: context.info.attempt });

      let progress: Record<string, unknown> | undefined;
      let summary: Record<string, number> | null = null;
      let snapshotId: string | null = null;
      const onJson = (message: Record<string, unknown>) => {
        if (message.message_type === 'status') {
          progress = pick(message, PROGRESS_FIELDS);
          context.heartbeat(progress);
        } else if (message.message_type === 'summary') {
          summary = pick(message, SUMMARY_FIELDS) as Record<string, number>;
          snapshotId = typeof message.snapshot_id === 'string' ? message.snapshot_id : null;
        }
      };
      const args = backupArgs({
        sourcePaths: job.sourcePaths,
        excludes: job.excludes,
        tags: job.tags,
        hostname: job.hostnameOverride,
      });
      const options = { onJson, signal: context.cancellationSignal };

      const warnings: string[] = [];
      const result = await whileHeartbeating(
        () => progress,
        () =>
          withResticSession(deps, { repo: job.repo, host: job.host, remoteRepoPath: job.remoteRepoPath }, (session) =>
            withStaleLockRecovery({ deps, session, repoId: job.repo.id, operation: 'backup', warnings }, () =>
              runRestic(session.exec, session.binary, session.access, args, options),
            ),
          ),
      );

      const completed = result.exitCode === ResticExit.ok || result.exitCode === ResticExit.partial;
      if (completed && snapshotId && summary) {
        warnings.push(...result.warnings);
        if (result.exitCode === ResticExit.partial && result.warnings.length === 0) {
          warnings.push('some source files could not be read (restic exit code 3)');
        }
        return { snapshotId, summary, warnings };
      }
      throw resticFailure(result, 'backup failed');
    },
  };
}
