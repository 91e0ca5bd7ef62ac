import { EntitySchema, type Opt } from '@mikro-orm/core';
import { Host } from './host';
import { Repo } from './repo';

export type JobStatus = 'running' | 'success' | 'failed';

export class BackupJob {
  id!: number;
  name!: string;
  repo!: Repo;
  /** Null for a local job (restic runs on the worker); set for a job that runs on a host over SSH. */
  host: Host | null = null;
  sourcePaths: Opt<string[]> = [];
  tags: Opt<string[]> = [];
  excludes: Opt<string[]> = [];
  description: string | null = null;
  scheduleEnabled: Opt<boolean> = false;
  scheduleHour: Opt<number> = 2;
  scheduleDays: Opt<string> = '1';
  notifyOnFailure: Opt<boolean> = true;
  remoteRepoPath: string | null = null;
  hostnameOverride: string | null = null;
  lastRun: Date | null = null;
  lastStatus: JobStatus | null = null;
  lastRunId: string | null = null;
  lastSnapshotId: string | null = null;
  lastError: string | null = null;
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
    scheduleEnabled: { type: 'boolean' },
    scheduleHour: { type: 'integer' },
    scheduleDays: { type: 'string' },
    notifyOnFailure: { type: 'boolean' },
    remoteRepoPath: { type: 'text', nullable: true },
    hostnameOverride: { type: 'string', nullable: true },
    lastRun: { type: 'Date', nullable: true },
    lastStatus: { type: 'string', nullable: true },
    lastRunId: { type: 'uuid', nullable: true },
    lastSnapshotId: { type: 'string', nullable: true },
    lastError: { type: 'text', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
