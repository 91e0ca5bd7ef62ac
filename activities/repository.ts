import { FailureType } from '../common/failures';
import { BackupJob, Repo, RepoStatsSample, Snapshot } from '../db/entities';
import { loadRepository, withPasswordFile, withRepositoryAccess, withResticSession } from './access';
import type { ActivityDeps } from './deps';
import { localExecutor } from './executors';
import { typedFailure } from './failure';
import { assertSnapshotMatched, resticFailure, runRestic } from './restic';

interface ResticSnapshot {
  id: string;
  short_id?: string;
  time: string;
  tree: string;
  parent?: string;
  paths?: string[];
  hostname?: string;
  username?: string;
  uid?: number;
  gid?: number;
  excludes?: string[];
  tags?: string[];
  program_version?: string;
  summary?: Record<string, unknown>;
}

/** Repository-level restic operations run from the worker: init and the snapshot catalogue. */
export function repositoryActivities(deps: ActivityDeps) {
  const loadRepo = (repoId: number) => loadRepository(deps, repoId);

  return {
    async initRepository({ repoId }: { repoId: number }): Promise<{ repositoryId: string | null }> {
      const repo = await loadRepo(repoId);
      let repositoryId: string | null = null;
      const result = await withRepositoryAccess(repo, deps.secrets, (access) =>
        withPasswordFile(access, (withFile) =>
          runRestic(localExecutor, deps.resticBinary, withFile, ['init', '--json'], {
            onJson: (message) => {
              if (typeof message.id === 'string') repositoryId = message.id;
            },
          }),
        ),
      );
      if (result.exitCode === 0) return { repositoryId };
      const text = `${result.exitError ?? ''}\n${result.stderrTail.join('\n')}`;
      if (/already exists|already initialized/i.test(text)) {
        throw typedFailure(FailureType.RepositoryAlreadyInitialized, `a repository already exists at ${repo.path}`);
      }
      throw resticFailure(result, 'init failed');
    },

    /**
     * Re-reads the repository's snapshot list into the catalogue the API serves. With a job id,
     * restic runs where that job runs (its host sees the repository even when the worker cannot).
     */
    async refreshSnapshotCatalogue({ repoId, viaJobId }: { repoId: number; viaJobId?: number }): Promise<{ count: number }> {
      const repo = await loadRepo(repoId);
      const job = viaJobId ? await deps.orm.em.fork().findOne(BackupJob, viaJobId, { populate: ['host', 'host.sshKey'] }) : null;
      const stdout: string[] = [];
      const place = { repo, host: job?.host ?? null, remoteRepoPath: job?.remoteRepoPath };
      const result = await withResticSession(deps, place, (session) =>
        runRestic(session.exec, session.binary, session.access, ['snapshots', '--json', '--no-lock'], {
          onOtherStdout: (line) => stdout.push(line),
        }),
      );
      if (result.exitCode !== 0) throw resticFailure(result, 'listing snapshots failed');
      const listed = JSON.parse(stdout.join('\n') || '[]') as ResticSnapshot[];

      await deps.orm.em.fork().transactional(async (em) => {
        await em.nativeDelete(Snapshot, { repoId });
        for (const s of listed) {
          em.create(Snapshot, {
            repoId,
            id: s.id,
            shortId: s.short_id ?? s.id.slice(0, 8),
            time: new Date(s.time),
            timeText: s.time,
            tree: s.tree,
            parent: s.parent ?? null,
            paths: s.paths ?? [],
            hostname: s.hostname ?? '',
            username: s.username ?? '',
            uid: s.uid ?? null,
            gid: s.gid ?? null,
            excludes: s.excludes ?? null,
            tags: s.tags ?? [],
            programVersion: s.program_version ?? null,
            summary: s.summary ?? null,
          });
        }
        await em.nativeUpdate(Repo, { id: repoId }, { snapshotsRefreshedAt: new Date() });
      });
      return { count: listed.length };
    },

    /**
     * `restic stats --json` in one mode. A restore-size answer is also kept as a history sample
     * (snapshot count, size, file count).
     */
    async readRepositoryStats({ repoId, mode }: { repoId: number; mode: string }): Promise<Record<string, unknown>> {
      const repo = await loadRepo(repoId);
      let stats: Record<string, unknown> | null = null;
      const result = await withResticSession(deps, { repo, host: null }, (session) =>
        runRestic(session.exec, session.binary, session.access, ['stats', '--json', '--no-lock', '--mode', mode], {
          onJson: (message) => {
            stats = message;
          },
        }),
      );
      if (result.exitCode !== 0 || !stats) throw resticFailure(result, 'reading repository statistics failed');
      const read: Record<string, unknown> = stats;
      if (mode === 'restore-size') {
        const em = deps.orm.em.fork();
        em.create(RepoStatsSample, {
          repoId,
          snapshotCount: Number(read.snapshots_count ?? 0),
          totalSize: Number(read.total_size ?? 0),
          totalFileCount: Number(read.total_file_count ?? 0),
        });
        await em.flush();
      }
      return read;
    },

    /**
     * Gives one snapshot (by full id) exactly `tags`. restic rewrites it under a new id, and exits
     * 0 even for an unknown id: that case is told apart by its "Ignoring" notice. `--set` cannot
     * set no tags (restic ignores an empty one), so clearing removes the `previous` ones.
     */
    async retagSnapshot(input: { repoId: number; snapshotId: string; tags: string[]; previous: string[] }): Promise<{ snapshotId: string }> {
      const repo = await loadRepo(input.repoId);
      let snapshotId = input.snapshotId;
      const tagArgs = input.tags.length > 0 ? input.tags.flatMap((tag) => ['--set', tag]) : input.previous.flatMap((tag) => ['--remove', tag]);
      const result = await withResticSession(deps, { repo, host: null }, (session) =>
        runRestic(session.exec, session.binary, session.access, ['tag', '--json', ...tagArgs, '--', input.snapshotId], {
          onJson: (message) => {
            if (message.message_type === 'changed' && message.old_snapshot_id === input.snapshotId) snapshotId = String(message.new_snapshot_id);
          },
        }),
      );
      if (result.exitCode !== 0) throw resticFailure(result, 'retagging the snapshot failed');
      assertSnapshotMatched(result, input.snapshotId);
      return { snapshotId };
    },
  };
}
