import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';
import type { JobStatus } from './backup-job';
import { Host } from './host';
import { SCHEDULE_PROPERTIES, ScheduledJob } from './job-schedule';
import { Repo, type PasswordSource } from './repo';

/** `restic copy` of a registered repository into a destination repository string. */
export class CopyJob extends ScheduledJob {
  [OptionalProps]?: 'notificationPolicy' | 'retryPolicy';
  id!: number;
  name!: string;
  sourceRepo!: Repo;
  /** Any restic repository string: a path, `sftp:...`, `rclone:remote:path`, ... */
  destPath!: string;
  /** The SSH host whose key and pinned host key open an `sftp:` destination. */
  destHost: Host | null = null;
  destPasswordSecret: string | null = null;
  destPasswordSource: Opt<PasswordSource> = 'local';
  destInfisicalSecretName: string | null = null;
  /** rclone's configuration for an `rclone:` destination (sealed: it holds the remote's credentials). */
  rcloneConfigSecret: string | null = null;
  /** Initialise a missing destination with the source's chunker parameters (never otherwise). */
  initDestination: Opt<boolean> = false;
  /** Copy only snapshots of these hosts / carrying these tags (empty: all). */
  filterHosts: Opt<string[]> = [];
  filterTags: Opt<string[]> = [];
  description: string | null = null;
  notificationPolicy: Record<string, unknown> | null = null;
  retryPolicy: Record<string, unknown> | null = null;
  lastRun: Date | null = null;
  lastStatus: JobStatus | null = null;
  lastRunId: string | null = null;
  lastError: string | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const CopyJobSchema = new EntitySchema<CopyJob>({
  class: CopyJob,
  tableName: 'copy_jobs',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string' },
    sourceRepo: { kind: 'm:1', entity: () => Repo, deleteRule: 'restrict' },
    destPath: { type: 'text' },
    destHost: { kind: 'm:1', entity: () => Host, nullable: true, deleteRule: 'restrict' },
    destPasswordSecret: { type: 'text', nullable: true },
    destPasswordSource: { type: 'string' },
    destInfisicalSecretName: { type: 'string', nullable: true },
    rcloneConfigSecret: { type: 'text', nullable: true },
    initDestination: { type: 'boolean' },
    filterHosts: { type: 'json' },
    filterTags: { type: 'json' },
    description: { type: 'text', nullable: true },
    ...SCHEDULE_PROPERTIES,
    notificationPolicy: { type: 'json', nullable: true },
    retryPolicy: { type: 'json', nullable: true },
    lastRun: { type: 'Date', nullable: true },
    lastStatus: { type: 'string', nullable: true },
    lastRunId: { type: 'uuid', nullable: true },
    lastError: { type: 'text', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
