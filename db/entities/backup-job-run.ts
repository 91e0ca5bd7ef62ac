import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';

export type RunStatus = 'queued' | 'running' | 'success' | 'failed';
export type RunTrigger = 'api' | 'schedule';

/** One execution of a backup job; its id is part of the Temporal workflow id. */
export class BackupJobRun {
  [OptionalProps]?: 'summary' | 'retention' | 'hooks';
  id!: string;
  jobId!: number;
  repoId!: number;
  hostId: number | null = null;
  status: Opt<RunStatus> = 'queued';
  trigger: Opt<RunTrigger> = 'api';
  workflowId!: string;
  queuedAt: Opt<Date> = new Date();
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  snapshotId: string | null = null;
  summary: Record<string, number> | null = null;
  warnings: Opt<string[]> = [];
  /** What the retention step after the backup did (applied, removed snapshots, ...); null without a policy. */
  retention: Record<string, unknown> | null = null;
  /** What the pre and post hooks did (exit code, output tail); null for a job without hooks. */
  hooks: Record<string, unknown> | null = null;
  failureCode: string | null = null;
  failureMessage: string | null = null;
  attempts: Opt<number> = 0;
  requestedByUserId: number | null = null;
  requestedByTokenId: number | null = null;
}

export const BackupJobRunSchema = new EntitySchema<BackupJobRun>({
  class: BackupJobRun,
  tableName: 'backup_job_runs',
  properties: {
    id: { type: 'uuid', primary: true },
    jobId: { type: 'integer' },
    repoId: { type: 'integer' },
    hostId: { type: 'integer', nullable: true },
    status: { type: 'string' },
    trigger: { type: 'string' },
    workflowId: { type: 'string', unique: true },
    queuedAt: { type: 'Date' },
    startedAt: { type: 'Date', nullable: true },
    finishedAt: { type: 'Date', nullable: true },
    snapshotId: { type: 'string', nullable: true },
    summary: { type: 'json', nullable: true },
    warnings: { type: 'json' },
    retention: { type: 'json', nullable: true },
    hooks: { type: 'json', nullable: true },
    failureCode: { type: 'string', nullable: true },
    failureMessage: { type: 'text', nullable: true },
    attempts: { type: 'integer' },
    requestedByUserId: { type: 'integer', nullable: true },
    requestedByTokenId: { type: 'integer', nullable: true },
  },
});
