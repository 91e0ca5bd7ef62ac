import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DirectoryPage } from '../activities/snapshot-browse';
import { NON_RETRYABLE_FAILURES } from '../common/failures';

// The caller waits for these: one attempt, and a failure goes straight back to it.
const once = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 1 } });
const refresh = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE_FAILURES },
});

/** Initialises a new restic repository at a registered repository's path. */
export async function repositoryInit(input: { repoId: number }): Promise<{ repositoryId: string | null }> {
  return once.initRepository(input);
}

/** Retags a snapshot (restic gives it a new id), then reloads the catalogue so the API can show it. */
export async function snapshotRetag(input: { repoId: number; snapshotId: string; tags: string[]; previous: string[] }): Promise<{ snapshotId: string }> {
  const retagged = await once.retagSnapshot(input);
  await refresh.refreshSnapshotCatalogue({ repoId: input.repoId });
  return retagged;
}

/** Reads `restic stats` of a repository (and records a history sample). */
export async function repositoryStatsRead(input: { repoId: number; mode: string }): Promise<Record<string, unknown>> {
  return once.readRepositoryStats(input);
}

/** Reloads a repository's snapshot catalogue from restic. */
export async function snapshotCatalogueRefresh(input: { repoId: number }): Promise<{ count: number }> {
  return refresh.refreshSnapshotCatalogue(input);
}

/** Reads one page of one directory of a snapshot. */
export async function snapshotBrowse(input: { repoId: number; tree: string; pathBase64: string; offset: number; limit: number }): Promise<DirectoryPage> {
  return once.listSnapshotDirectory(input);
}
