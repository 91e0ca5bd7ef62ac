import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import { RunLifecycle, runLifecycleProperties } from './run-lifecycle';

export type { RunStatus, RunTrigger } from './run-lifecycle';

/** One execution of a backup job; its id is part of the Temporal workflow id. */
export class BackupJobRun extends RunLifecycle {
  [OptionalProps]?: 'summary' | 'retention' | 'hooks';
  id!: string;
  jobId!: number;
  repoId!: number;
  hostId: number | null = null;
  snapshotId: string | null = null;
  summary: Record<string, number> | null = null;
  /** What the retention step after the backup did (applied, removed snapshots, ...); null without a policy. */
  retention: Record<string, unknown> | null = null;
  /** What the pre and post hooks did (exit code, output tail); null for a job without hooks. */
  hooks: Record<string, unknown> | null = null;
}

export const BackupJobRunSchema = new EntitySchema<BackupJobRun>({
  class: BackupJobRun,
  tableName: 'backup_job_runs',
  properties: {
    ...runLifecycleProperties,
    id: { type: 'uuid', primary: true },
    jobId: { type: 'integer' },
    repoId: { type: 'integer' },
    hostId: { type: 'integer', nullable: true },
    snapshotId: { type: 'string', nullable: true },
    summary: { type: 'json', nullable: true },
    retention: { type: 'json', nullable: true },
    hooks: { type: 'json', nullable: true },
  },
});
