import type { EntityManager } from '@mikro-orm/postgresql';
import { syncAllBackupSchedules, syncBackupSchedule } from '../common/backup-schedules';
import type { BackupJob } from '../db/entities';
import type { Services } from './context';
import { ApiError } from './errors';

const unavailable = (what: string) => new ApiError(503, 'temporal_unavailable', `${what} was saved, but its schedule could not be applied in Temporal yet: the worker applies it when it starts, or save it again`);

/** After a job was saved or deleted: its schedule follows, or the request says it could not (503). */
export async function applyJobSchedule(services: Services, em: EntityManager, jobId: number, job: BackupJob | null): Promise<void> {
  try {
    await syncBackupSchedule(services, em, jobId, job);
  } catch (error) {
    console.error(`syncing the schedule of backup job ${jobId} failed:`, error);
    // A deleted job's schedule removes itself when it next fires: nothing to redo.
    if (job) throw unavailable(`backup job ${jobId}`);
  }
}

/** After the time zone or minute of all schedules changed. */
export async function applyAllSchedules(services: Services, em: EntityManager): Promise<void> {
  await syncAllBackupSchedules(services, em).catch(() => {
    throw unavailable('the setting');
  });
}
