import type { EntityManager } from '@mikro-orm/postgresql';
import { syncBackupSchedule, syncCopySchedule } from '../common/backup-schedules';
import { applyAllSchedules as reconcileAll } from '../common/schedule-reconcile';
import type { Services } from './context';
import { ApiError } from './errors';
import { log } from '../common/log';
import { loggedError } from './middleware/errors';

const unavailable = (what: string) => new ApiError(503, 'temporal_unavailable', `${what} was saved, but its schedule could not be applied in Temporal yet: the worker applies it when it starts, or save it again`);

/** After a job was saved or deleted: its schedule follows, or the request says it could not (503). */
async function apply(what: string, hasJob: boolean, sync: () => Promise<void>): Promise<void> {
  try {
    await sync();
  } catch (error) {
    log.error({ err: loggedError(error) }, `syncing the schedule of ${what} failed`);
    // A deleted job's schedule removes itself when it next fires: nothing to redo.
    if (hasJob) throw unavailable(what);
  }
}

/** `deleted`: the job is gone, and its schedule goes with it. */
export const applyJobSchedule = (services: Services, em: EntityManager, jobId: number, deleted = false) =>
  apply(`backup job ${jobId}`, !deleted, () => syncBackupSchedule(services, em, jobId));

export const applyCopySchedule = (services: Services, em: EntityManager, jobId: number, deleted = false) =>
  apply(`copy job ${jobId}`, !deleted, () => syncCopySchedule(services, em, jobId));

/** After the time zone or minute of all schedules, or the placement of a task, changed. */
export async function applyAllSchedules(services: Services, em: EntityManager): Promise<void> {
  await reconcileAll(services, em).catch(() => {
    throw unavailable('the setting');
  });
}
