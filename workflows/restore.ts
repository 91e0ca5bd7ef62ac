import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestoreOutcome } from '../activities/restore';
import { RECORD_OPTIONS, RESTIC_OPTIONS } from './activity-options';
import { describeFailure, runFailure } from './failures';
import { withRepositoryLock } from './repository-lock';

export interface RestoreInput {
  restoreId: number;
  repoId: number;
  snapshotId: string;
}

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const restic = proxyActivities<Activities>(RESTIC_OPTIONS);

/**
 * One restore (`restore-<id>`), to the target the API resolved and checked:
 * 1. record the restore as running;
 * 2. take the repository's lock, shared (a prune must not remove data being read; backups and
 *    other restores go on);
 * 3. check the target has room, then restore: restic on the host when it can open the
 *    repository there, else through the worker and rsync, retrying transient failures;
 * 4. record the outcome and emit `restore.success` or `restore.failure`.
 */
export async function restoreSnapshot({ restoreId, repoId, snapshotId }: RestoreInput): Promise<RestoreOutcome> {
  await records.markRestoreStarted({ restoreId });
  const about = { id: restoreId, repo_id: repoId, snapshot_id: snapshotId };
  let outcome: RestoreOutcome;
  try {
    outcome = await withRepositoryLock(repoId, 'shared', () => restic.restoreSnapshot({ restoreId }));
  } catch (error) {
    const failure = describeFailure(error);
    const event = { type: 'restore.failure', payload: { ...about, status: 'failed', failure } };
    await records.recordRestoreFinished({ restoreId, status: 'failed', failure, events: [event] });
    throw runFailure(failure);
  }
  const event = { type: 'restore.success', payload: { ...about, status: 'success', failure: null, summary: outcome.summary } };
  await records.recordRestoreFinished({ restoreId, status: 'success', ...outcome, events: [event] });
  return outcome;
}
