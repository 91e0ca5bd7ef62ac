import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { markLost, workflowState } from '../api/runs';
import { BackupJobRun, OperationRun } from '../db/entities';

/**
 * The active run in a new run's way: if its workflow is no longer running (terminated from the
 * Temporal UI, lost with its history), it is closed as `workflow_lost` so it blocks nothing. A
 * run just recorded by an API trigger, whose workflow is not started yet, is still going.
 * Returns the id of a run still going, or null (none was active, or it was closed).
 */
export async function closeIfLost<T extends BackupJobRun | OperationRun>(
  temporal: Client,
  em: EntityManager,
  active: T | null,
): Promise<string | null> {
  if (!active) return null;
  const state = await workflowState({ temporal }, active);
  if (state.running) return active.id;
  await markLost(em, active instanceof BackupJobRun ? BackupJobRun : OperationRun, active, state.status);
  return null;
}

/**
 * Records a new run, unless the run in its way (the database admits one active run per job or
 * task) is still going: then that run's id. A run in the way whose workflow is gone is closed
 * first, and the new one recorded after all.
 */
export async function insertRunUnlessBusy<T extends BackupJobRun | OperationRun>(
  temporal: Client,
  em: EntityManager,
  run: { insert: () => Promise<void>; inTheWay: () => Promise<T | null> },
): Promise<string | null> {
  try {
    await run.insert();
    return null;
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
  }
  em.clear();
  const active = await closeIfLost(temporal, em, await run.inTheWay());
  if (!active) await run.insert();
  return active;
}
