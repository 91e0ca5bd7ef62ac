import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CheckOutcome } from '../activities/maintenance';
import { CATALOGUE_OPTIONS, RECORD_OPTIONS, RESTIC_OPTIONS } from './activity-options';
import { describeFailure, runFailure, type FailureDescription } from './failures';
import { withRepositoryLock } from './repository-lock';

export interface RepositoryCheckInput {
  runId: string;
  repoId: number;
  /** The repository's name when the check was asked for, for the failure event. */
  repoName: string;
  /** Read all the data (`--read-data`), or the given subset of it (`--read-data-subset`). */
  readData: boolean;
  readDataSubset: string | null;
}

export interface SnapshotDeleteInput {
  runId: string;
  repoId: number;
  snapshotId: string;
  prune: boolean;
}

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const restic = proxyActivities<Activities>(RESTIC_OPTIONS);
const catalogue = proxyActivities<Activities>(CATALOGUE_OPTIONS);

/**
 * A check of one repository (`repo-check-<repoId>-<runId>`):
 * 1. record the run as started;
 * 2. take the repository's lock alone (no backup, forget or prune meanwhile);
 * 3. run `restic check`, reading all the data or the asked subset of it;
 * 4. record the outcome: a damaged repository, or one that cannot be checked, is a failed run
 *    and emits `repo.check.failure`.
 */
export async function repositoryCheck(input: RepositoryCheckInput): Promise<CheckOutcome> {
  const { runId, repoId } = input;
  await records.markOperationStarted({ runId });
  const failed = async (failure: FailureDescription, result: Record<string, unknown> | null, warnings: string[]) => {
    const event = { type: 'repo.check.failure', payload: { id: repoId, name: input.repoName, run_id: runId, output: failure.message } };
    await records.recordOperationFailed({ runId, ...failure, result, warnings, events: [event] });
    return runFailure(failure);
  };

  let outcome: CheckOutcome;
  try {
    outcome = await withRepositoryLock(repoId, 'exclusive', () => restic.checkRepository({ runId, repoId, readData: input.readData, readDataSubset: input.readDataSubset }));
  } catch (error) {
    throw await failed(describeFailure(error), null, []);
  }
  const { warnings, ...result } = outcome;
  if (outcome.errors) {
    const message = `restic check found the repository damaged (${outcome.num_errors} error${outcome.num_errors === 1 ? '' : 's'})`;
    throw await failed({ code: 'repository_damaged', message }, result, warnings);
  }
  await records.recordOperationSucceeded({ runId, result, warnings });
  return outcome;
}

/**
 * Deletion of one snapshot (`snapshot-delete-<repoId>-<runId>`):
 * 1. record the run as started;
 * 2. take the repository's lock alone;
 * 3. `restic forget` the snapshot, and prune if asked;
 * 4. refresh the snapshot catalogue (a failure here is a warning: the snapshot is gone);
 * 5. record the outcome; a success emits `snapshot.deleted`.
 */
export async function snapshotDelete(input: SnapshotDeleteInput): Promise<void> {
  const { runId, repoId, snapshotId, prune } = input;
  await records.markOperationStarted({ runId });
  let outcome;
  try {
    outcome = await withRepositoryLock(repoId, 'exclusive', () => restic.forgetSnapshot({ runId, repoId, snapshotId, prune }));
  } catch (error) {
    const failure = describeFailure(error);
    await records.recordOperationFailed({ runId, ...failure });
    throw runFailure(failure);
  }
  const { warnings, ...result } = outcome;
  try {
    await catalogue.refreshSnapshotCatalogue({ repoId });
  } catch (error) {
    const failure = describeFailure(error);
    log.warn('snapshot catalogue refresh failed after a deletion', { failure });
    warnings.push(`the snapshot list was not refreshed: ${failure.message}`);
  }
  const event = { type: 'snapshot.deleted', payload: { repo_id: repoId, snapshot_id: snapshotId, pruned: prune } };
  await records.recordOperationSucceeded({ runId, result, warnings, events: [event] });
}
