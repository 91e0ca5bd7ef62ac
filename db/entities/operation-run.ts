import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import { RunLifecycle, runLifecycleProperties } from './run-lifecycle';

export type OperationKind = 'copy' | 'repo_check' | 'snapshot_delete' | 'scheduler_task' | 'maintenance';

/** One run of anything that is not a backup (a check, a snapshot deletion, a copy...); its id is part of the workflow id. */
export class OperationRun extends RunLifecycle {
  [OptionalProps]?: 'result' | 'params';
  id!: string;
  kind!: OperationKind;
  jobId: number | null = null;
  repoId: number | null = null;
  hostId: number | null = null;
  snapshotId: string | null = null;
  taskKey: string | null = null;
  /** What the run was asked to do (check options, prune, ...), as the workflow received it. */
  params: Record<string, unknown> | null = null;
  result: Record<string, unknown> | null = null;
}

export const OperationRunSchema = new EntitySchema<OperationRun>({
  class: OperationRun,
  tableName: 'operation_runs',
  properties: {
    ...runLifecycleProperties,
    id: { type: 'uuid', primary: true },
    kind: { type: 'string' },
    jobId: { type: 'integer', nullable: true },
    repoId: { type: 'integer', nullable: true },
    hostId: { type: 'integer', nullable: true },
    snapshotId: { type: 'string', nullable: true },
    taskKey: { type: 'string', nullable: true },
    params: { type: 'json', nullable: true },
    result: { type: 'json', nullable: true },
  },
});
