import { Context } from '@temporalio/activity';
import { OperationRun } from '../db/entities';
import { loadRepository, withResticSession } from './access';
import type { ActivityDeps } from './deps';
import { whileHeartbeating } from './heartbeat';
import { assertSnapshotMatched, resticFailure, runRestic } from './restic';
import { withStaleLockRecovery } from './stale-locks';

export interface CheckOutcome {
  /** True when restic found the repository damaged. */
  errors: boolean;
  num_errors: number;
  broken_packs: string[];
  suggest_repair_index: boolean;
  suggest_prune: boolean;
  /** restic's error messages (the first ones), which say what is damaged. */
  output: string[];
  warnings: string[];
}

export interface ForgetOutcome {
  removed_snapshots: string[];
  pruned: boolean;
  warnings: string[];
}

const OUTPUT_LINES = 50;

/** Exclusive restic operations on a repository: check, and forgetting snapshots. The caller holds the repository lock. */
export function maintenanceActivities(deps: ActivityDeps) {
  const countAttempt = (runId: string) => deps.orm.em.fork().nativeUpdate(OperationRun, { id: runId }, { attempts: Context.current().info.attempt });

  return {
    /**
     * `restic check`, optionally reading all the data or a subset (`10%`, `1/5`, `500M`). A damaged
     * repository is an outcome, not an error; a repository that cannot be opened is an error.
     */
    async checkRepository(input: { runId: string; repoId: number; readData: boolean; readDataSubset: string | null }): Promise<CheckOutcome> {
      const { runId, repoId } = input;
      const repo = await loadRepository(deps, repoId);
      await countAttempt(runId);
      const warnings: string[] = [];
      let summary: Record<string, unknown> | null = null;
      const reading = input.readData ? ['--read-data'] : input.readDataSubset ? ['--read-data-subset', input.readDataSubset] : [];
      const args = ['check', '--json', ...reading];
      const result = await withResticSession(deps, { repo, host: null }, (session) =>
        whileHeartbeating(
          () => undefined,
          () =>
            withStaleLockRecovery({ deps, session, repoId, operation: 'check', warnings }, () =>
              runRestic(session.exec, session.binary, session.access, args, {
                onJson: (message) => {
                  if (message.message_type === 'summary') summary = message;
                },
              }),
            ),
        ),
      );
      const found = summary as Record<string, unknown> | null;
      if (!found || (result.exitCode !== 0 && result.exitCode !== 1)) throw resticFailure(result, 'check failed');
      const numErrors = Number(found.num_errors ?? 0);
      return {
        errors: result.exitCode !== 0 || numErrors > 0,
        num_errors: numErrors,
        broken_packs: Array.isArray(found.broken_packs) ? found.broken_packs.map(String) : [],
        suggest_repair_index: found.suggest_repair_index === true,
        suggest_prune: found.suggest_prune === true,
        output: result.warnings.slice(0, OUTPUT_LINES),
        warnings,
      };
    },

    /** `restic forget <id>` (and `--prune`); an id restic does not know is SnapshotNotFound. */
    async forgetSnapshot({ runId, repoId, snapshotId, prune }: { runId: string; repoId: number; snapshotId: string; prune: boolean }): Promise<ForgetOutcome> {
      const repo = await loadRepository(deps, repoId);
      await countAttempt(runId);
      const warnings: string[] = [];
      const args = ['forget', ...(prune ? ['--prune'] : []), '--', snapshotId];
      const result = await withResticSession(deps, { repo, host: null }, (session) =>
        whileHeartbeating(
          () => undefined,
          () => withStaleLockRecovery({ deps, session, repoId, operation: 'forget', warnings }, () => runRestic(session.exec, session.binary, session.access, args)),
        ),
      );
      if (result.exitCode !== 0) throw resticFailure(result, 'forgetting the snapshot failed');
      assertSnapshotMatched(result, snapshotId);
      return { removed_snapshots: [snapshotId], pruned: prune, warnings };
    },
  };
}
