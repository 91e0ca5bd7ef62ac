import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';
import type { RunStatus, RunTrigger } from './backup-job-run';

export type OperationKind = 'copy' | 'repo_check' | 'snapshot_delete' | 'scheduler_task' | 'maintenance';

/** One run of anything that is not a backup (a check, a snapshot deletion, a copy...); its id is part of the workflow id. */
export class OperationRun {
  [OptionalProps]?: 'result' | 'params';
  id!: string;
  kind!: OperationKind;
  status: Opt<RunStatus> = 'queued';
  trigger: Opt<RunTrigger> = 'api';
  workflowId!: string;
  jobId: number | null = null;
  repoId: number | null = null;
  hostId: number | null = null;
  snapshotId: string | null = null;
  taskKey: string | null = null;
  /** What the run was asked to do (check options, prune, ...), as the workflow received it. */
  params: Record<string, unknown> | null = null;
  queuedAt: Opt<Date> = new Date();
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  result: Record<string, unknown> | null = null;
  warnings: Opt<string[]> = [];
  failureCode: string | null = null;
  failureMessage: string | null = null;
  attempts: Opt<number> = 0;
  requestedByUserId: number | null = null;
  requestedByTokenId: number | null = null;
}

export const OperationRunSchema = new EntitySchema<OperationRun>({
  class: OperationRun,
  tableName: 'operation_runs',
  properties: {
    id: { type: 'uuid', primary: true },
    kind: { type: 'string' },
    status: { type: 'string' },
    trigger: { type: 'string' },
    workflowId: { type: 'string', unique: true },
    jobId: { type: 'integer', nullable: true },
    repoId: { type: 'integer', nullable: true },
    hostId: { type: 'integer', nullable: true },
    snapshotId: { type: 'string', nullable: true },
    taskKey: { type: 'string', nullable: true },
    params: { type: 'json', nullable: true },
    queuedAt: { type: 'Date' },
    startedAt: { type: 'Date', nullable: true },
    finishedAt: { type: 'Date', nullable: true },
    result: { type: 'json', nullable: true },
    warnings: { type: 'json' },
    failureCode: { type: 'string', nullable: true },
    failureMessage: { type: 'text', nullable: true },
    attempts: { type: 'integer' },
    requestedByUserId: { type: 'integer', nullable: true },
    requestedByTokenId: { type: 'integer', nullable: true },
  },
});
