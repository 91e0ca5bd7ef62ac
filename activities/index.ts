import { backupActivities } from './backup';
import { connectionTestActivities } from './connection-tests';
import { copyActivities } from './copy';
import type { ActivityDeps } from './deps';
import { hookActivities } from './hooks';
import { lockActivities } from './locks';
import { notificationActivities } from './notifications';
import { maintenanceActivities } from './maintenance';
import { recordActivities } from './records';
import { repositoryActivities } from './repository';
import { restoreActivities } from './restore';
import { retentionActivities } from './retention';
import { schedulerActivities } from './scheduler';
import { snapshotBrowseActivities } from './snapshot-browse';
import { webhookActivities } from './webhooks';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, bound to the worker's database, secrets and restic. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...recordActivities(deps),
    ...backupActivities(deps),
    ...repositoryActivities(deps),
    ...connectionTestActivities(deps),
    ...lockActivities(deps),
    ...hookActivities(deps),
    ...copyActivities(deps),
    ...maintenanceActivities(deps),
    ...retentionActivities(deps),
    ...snapshotBrowseActivities(deps),
    ...restoreActivities(deps),
    ...webhookActivities(deps),
    ...notificationActivities(deps),
    ...schedulerActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
