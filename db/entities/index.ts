export * from './user';
export * from './api-token';
export * from './ssh-key';
export * from './host';
export * from './repo';
export * from './backup-job';
export * from './backup-job-run';
export * from './snapshot';
export * from './setting';
export * from './api-token-log';
export * from './domain-event';
export * from './repo-stats-sample';
export * from './operation-run';
export * from './copy-job';
export * from './restore';
export * from './webhook';
export * from './webhook-delivery';
export * from './app-notification';
export * from './activity-log';
export * from './cron-log-entry';

import { UserSchema } from './user';
import { ApiTokenSchema } from './api-token';
import { SshKeySchema } from './ssh-key';
import { HostSchema } from './host';
import { RepoSchema } from './repo';
import { BackupJobSchema } from './backup-job';
import { BackupJobRunSchema } from './backup-job-run';
import { SnapshotSchema } from './snapshot';
import { SettingSchema } from './setting';
import { ApiTokenLogSchema } from './api-token-log';
import { DomainEventSchema } from './domain-event';
import { RepoStatsSampleSchema } from './repo-stats-sample';
import { OperationRunSchema } from './operation-run';
import { CopyJobSchema } from './copy-job';
import { RestoreSchema } from './restore';
import { WebhookSchema } from './webhook';
import { WebhookDeliveryAttemptSchema, WebhookDeliverySchema } from './webhook-delivery';
import { AppNotificationSchema, NotificationDeliverySchema } from './app-notification';
import { ActivityLogSchema } from './activity-log';
import { CronLogEntrySchema } from './cron-log-entry';

export const entitySchemas = [
  UserSchema,
  ApiTokenSchema,
  SshKeySchema,
  HostSchema,
  RepoSchema,
  BackupJobSchema,
  BackupJobRunSchema,
  SnapshotSchema,
  SettingSchema,
  ApiTokenLogSchema,
  DomainEventSchema,
  RepoStatsSampleSchema,
  OperationRunSchema,
  CopyJobSchema,
  RestoreSchema,
  WebhookSchema,
  WebhookDeliverySchema,
  WebhookDeliveryAttemptSchema,
  AppNotificationSchema,
  NotificationDeliverySchema,
  ActivityLogSchema,
  CronLogEntrySchema,
];
