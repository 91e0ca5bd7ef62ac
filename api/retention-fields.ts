import type { BackupJob } from '../db/entities';

/** The wire names of a backup job's retention fields (flat, as in the reference) and the entity properties they map to. */
export const RETENTION_FIELDS = {
  retention_enabled: 'retentionEnabled',
  retention_keep_last: 'retentionKeepLast',
  retention_keep_hourly: 'retentionKeepHourly',
  retention_keep_daily: 'retentionKeepDaily',
  retention_keep_weekly: 'retentionKeepWeekly',
  retention_keep_monthly: 'retentionKeepMonthly',
  retention_keep_yearly: 'retentionKeepYearly',
  retention_keep_within: 'retentionKeepWithin',
  retention_keep_tags: 'retentionKeepTags',
  retention_prune: 'retentionPrune',
} as const satisfies Record<string, keyof BackupJob>;

type RetentionFields = { -readonly [F in keyof typeof RETENTION_FIELDS]: BackupJob[(typeof RETENTION_FIELDS)[F]] };

/** The retention fields of a job, by wire name. */
export function retentionFieldsOf(job: Pick<BackupJob, (typeof RETENTION_FIELDS)[keyof typeof RETENTION_FIELDS]>): RetentionFields {
  return Object.fromEntries(Object.entries(RETENTION_FIELDS).map(([field, prop]) => [field, job[prop]])) as RetentionFields;
}

/** Copies the retention fields a request body sets onto the job. */
export function assignRetentionFields(job: BackupJob, body: Partial<RetentionFields>): void {
  for (const [field, prop] of Object.entries(RETENTION_FIELDS) as [keyof RetentionFields, (typeof RETENTION_FIELDS)[keyof RetentionFields]][]) {
    const value = body[field];
    if (value !== undefined) (job as unknown as Record<string, unknown>)[prop] = value;
  }
}
