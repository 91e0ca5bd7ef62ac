import type { RetentionPolicy } from '../common/retention-policy';
import { FailureType } from '../common/failures';
import { BackupJob } from '../db/entities';
import { withResticSession } from './access';
import type { ActivityDeps } from './deps';
import { typedFailure } from './failure';
import { whileHeartbeating } from './heartbeat';
import { forgetPolicyArgs, resticFailure, runRestic } from './restic';
import { withStaleLockRecovery } from './stale-locks';

export interface RetentionOutcome {
  applied: true;
  removed_snapshots: string[];
  kept_snapshots: number;
  pruned: boolean;
  warnings: string[];
}

interface ForgetGroup {
  keep?: { id: string }[] | null;
  remove?: { id: string }[] | null;
}

/** The retention step of backup runs: `restic forget` by the job's policy. */
export function retentionActivities(deps: ActivityDeps) {
  const loadJob = async (jobId: number) => {
    const job = await deps.orm.em.fork().findOne(BackupJob, jobId, { populate: ['repo', 'repo.sshHost', 'repo.sshHost.sshKey', 'host', 'host.sshKey'] });
    if (!job) throw typedFailure(FailureType.InvalidConfiguration, `backup job ${jobId} no longer exists`);
    return job;
  };

  return {
    /**
     * Applies `policy` where the job runs, to the snapshots of the same host and paths as the one
     * the backup just made (read from restic itself); the new snapshot is among those kept.
     */
    async applyRetention({ jobId, snapshotId, policy }: { jobId: number; snapshotId: string; policy: RetentionPolicy }): Promise<RetentionOutcome> {
      const job = await loadJob(jobId);
      const warnings: string[] = [];
      const place = { repo: job.repo, host: job.host, remoteRepoPath: job.remoteRepoPath };
      const groups = await withResticSession(deps, place, async (session) => {
        const listed: string[] = [];
        const found = await runRestic(session.exec, session.binary, session.access, ['snapshots', '--json', '--no-lock', snapshotId], { onOtherStdout: (l) => listed.push(l) });
        if (found.exitCode !== 0) throw resticFailure(found, 'reading the new snapshot failed');
        const [snapshot] = JSON.parse(listed.join('\n') || '[]') as { hostname: string; paths: string[] }[];
        if (!snapshot) throw typedFailure(FailureType.SnapshotNotFound, `snapshot ${snapshotId.slice(0, 8)} is not in the repository`);

        const printed: string[] = [];
        const args = forgetPolicyArgs(policy, { hostname: snapshot.hostname, paths: snapshot.paths });
        const result = await whileHeartbeating(
          () => undefined,
          () =>
            withStaleLockRecovery({ deps, session, repoId: job.repo.id, operation: 'forget', warnings }, () =>
              runRestic(session.exec, session.binary, session.access, args, { onOtherStdout: (l) => printed.push(l) }),
            ),
        );
        if (result.exitCode !== 0) throw resticFailure(result, 'applying the retention policy failed');
        // The JSON report is the line that starts with `[`; prune's progress text follows it.
        return JSON.parse(printed.find((line) => line.startsWith('[')) ?? '[]') as ForgetGroup[];
      });
      return {
        applied: true,
        removed_snapshots: groups.flatMap((g) => (g.remove ?? []).map((s) => s.id)),
        kept_snapshots: groups.reduce((n, g) => n + (g.keep ?? []).length, 0),
        pruned: policy.prune,
        warnings,
      };
    },
  };
}
