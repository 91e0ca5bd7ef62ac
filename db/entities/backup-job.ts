import { EntitySchema, type Opt } from '@mikro-orm/core';
import type { RetentionPolicy } from '../../common/retention-policy';
import { Host } from './host';
import { SCHEDULE_PROPERTIES, ScheduledJob } from './job-schedule';
import { Repo } from './repo';

export type JobStatus = 'running' | 'success' | 'failed';

export class BackupJob extends ScheduledJob {
  id!: number;
  name!: string;
  repo!: Repo;
  /** Null for a local job (restic runs on the worker); set for a job that runs on a host over SSH. */
  host: Host | null = null;
  sourcePaths: Opt<string[]> = [];
  tags: Opt<string[]> = [];
  excludes: Opt<string[]> = [];
  description: string | null = null;
  notifyOnFailure: Opt<boolean> = true;
  /** `{inherit, events: {<event>: [<channel>...]}}`; null inherits from the repository. */
  notificationPolicy: Record<string, unknown> | null = null;
  remoteRepoPath: string | null = null;
  hostnameOverride: string | null = null;
  lastRun: Date | null = null;
  lastStatus: JobStatus | null = null;
  lastRunId: string | null = null;
  lastSnapshotId: string | null = null;
  lastError: string | null = null;
  /** Applied after each successful backup; an enabled policy keeps something (the API refuses one that would not). */
  retentionEnabled: Opt<boolean> = false;
  retentionKeepLast: number | null = null;
  retentionKeepHourly: number | null = null;
  retentionKeepDaily: number | null = null;
  retentionKeepWeekly: number | null = null;
  retentionKeepMonthly: number | null = null;
  retentionKeepYearly: number | null = null;
  retentionKeepWithin: string | null = null;
  retentionKeepTags: Opt<string[]> = [];
  retentionPrune: Opt<boolean> = true;
  /** Argv of the programs run before and after the backup (an allowed program, never a shell line). */
  preHookCommand: string[] | null = null;
  postHookCommand: string[] | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const BackupJobSchema = new EntitySchema<BackupJob>({
  class: BackupJob,
  tableName: 'backup_jobs',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string' },
    repo: { kind: 'm:1', entity: () => Repo, deleteRule: 'restrict' },
    host: { kind: 'm:1', entity: () => Host, nullable: true, deleteRule: 'restrict' },
    sourcePaths: { type: 'json' },
    tags: { type: 'json' },
    excludes: { type: 'json' },
    description: { type: 'text', nullable: true },
    ...SCHEDULE_PROPERTIES,
    notifyOnFailure: { type: 'boolean' },
    notificationPolicy: { type: 'json', nullable: true },
    remoteRepoPath: { type: 'text', nullable: true },
    hostnameOverride: { type: 'string', nullable: true },
    lastRun: { type: 'Date', nullable: true },
    lastStatus: { type: 'string', nullable: true },
    lastRunId: { type: 'uuid', nullable: true },
    lastSnapshotId: { type: 'string', nullable: true },
    lastError: { type: 'text', nullable: true },
    retentionEnabled: { type: 'boolean' },
    retentionKeepLast: { type: 'integer', nullable: true },
    retentionKeepHourly: { type: 'integer', nullable: true },
    retentionKeepDaily: { type: 'integer', nullable: true },
    retentionKeepWeekly: { type: 'integer', nullable: true },
    retentionKeepMonthly: { type: 'integer', nullable: true },
    retentionKeepYearly: { type: 'integer', nullable: true },
    retentionKeepWithin: { type: 'string', nullable: true },
    retentionKeepTags: { type: 'json' },
    retentionPrune: { type: 'boolean' },
    preHookCommand: { type: 'json', nullable: true },
    postHookCommand: { type: 'json', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});

/** The job's retention policy, or null when it has none enabled. */
export function retentionPolicyOf(job: BackupJob): RetentionPolicy | null {
  if (!job.retentionEnabled) return null;
  return {
    keepLast: job.retentionKeepLast,
    keepHourly: job.retentionKeepHourly,
    keepDaily: job.retentionKeepDaily,
    keepWeekly: job.retentionKeepWeekly,
    keepMonthly: job.retentionKeepMonthly,
    keepYearly: job.retentionKeepYearly,
    keepWithin: job.retentionKeepWithin,
    keepTags: job.retentionKeepTags,
    prune: job.retentionPrune,
  };
}
