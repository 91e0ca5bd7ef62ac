import type { EntityManager } from '@mikro-orm/postgresql';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { markLost, type OnLost } from '../api/runs';
import { BackupJobRun, OperationRun } from '../db/entities';

/**
 * The active run in a new run's way: if its workflow is no longer running (terminated from the
 * Temporal UI, lost with its history), it is closed as `workflow_lost` so it blocks nothing.
 * Returns the id of a run still going, or null (none was active, or it was closed).
 */
export async function closeIfLost<T extends BackupJobRun | OperationRun>(
  temporal: Client,
  em: EntityManager,
  active: T | null,
  onLost?: (run: T) => OnLost,
): Promise<string | null> {
  if (!active) return null;
  let status = 'NOT_FOUND';
  try {
    status = (await temporal.workflow.getHandle(active.workflowId).describe()).status.name;
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  if (status === 'RUNNING') return active.id;
  await markLost(em, active instanceof BackupJobRun ? BackupJobRun : OperationRun, active, status, onLost?.(active));
  return null;
}
