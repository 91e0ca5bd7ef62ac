import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { CATALOGUE_OPTIONS, RECORD_OPTIONS } from './activity-options';
import { describeFailure, runFailure, type FailureDescription } from './failures';

export interface MaintenancePassInput {
  runId: string;
  /** The repositories to refresh, in this order (the API picks them, stalest first). */
  repoIds: number[];
}

// A type, not an interface: it is recorded as the run's result (a plain record).
export type MaintenancePassResult = {
  repos_refreshed: number;
  snapshots_indexed: number;
  repos: ({ repo_id: number; snapshots: number } | { repo_id: number; failure: FailureDescription })[];
};

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const catalogue = proxyActivities<Activities>(CATALOGUE_OPTIONS);

/**
 * A maintenance pass (`maintenance-<runId>`), started by hand instead of waiting for the next
 * scheduled one:
 * 1. record the run as started;
 * 2. re-read the snapshot catalogue of each repository, one after another: one `restic
 *    snapshots` both refreshes the list and catalogues new snapshots, so both of the API's
 *    `types` are this step; a repository that fails is a warning and the pass goes on;
 * 3. record the outcome: failed only when every repository failed.
 */
export async function maintenancePass(input: MaintenancePassInput): Promise<MaintenancePassResult> {
  const { runId, repoIds } = input;
  await records.markOperationStarted({ runId });
  const result: MaintenancePassResult = { repos_refreshed: 0, snapshots_indexed: 0, repos: [] };
  const warnings: string[] = [];
  let lastFailure: FailureDescription | null = null;
  for (const repoId of repoIds) {
    try {
      const { count } = await catalogue.refreshSnapshotCatalogue({ repoId });
      result.repos_refreshed += 1;
      result.snapshots_indexed += count;
      result.repos.push({ repo_id: repoId, snapshots: count });
    } catch (error) {
      lastFailure = describeFailure(error);
      result.repos.push({ repo_id: repoId, failure: lastFailure });
      warnings.push(`repository ${repoId} was not refreshed: ${lastFailure.message}`);
    }
  }
  if (lastFailure && result.repos_refreshed === 0) {
    await records.recordOperationFailed({ runId, ...lastFailure, result, warnings });
    throw runFailure(lastFailure);
  }
  await records.recordOperationSucceeded({ runId, result, warnings });
  return result;
}
