import type { EntitySchemaProperty, Opt } from '@mikro-orm/core';

export type RunStatus = 'queued' | 'running' | 'success' | 'failed';
export type RunTrigger = 'api' | 'schedule';

/** What every run record shares (backup runs, operation runs, restores): its workflow and life cycle. */
export abstract class RunLifecycle<Trigger extends RunTrigger = RunTrigger> {
  status: Opt<RunStatus> = 'queued';
  trigger: Opt<Trigger> = 'api' as Trigger;
  workflowId!: string;
  queuedAt: Opt<Date> = new Date();
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  warnings: Opt<string[]> = [];
  failureCode: string | null = null;
  failureMessage: string | null = null;
  attempts: Opt<number> = 0;
  requestedByUserId: number | null = null;
  requestedByTokenId: number | null = null;
}

/** The columns of RunLifecycle, for the schemas of the entities that extend it. */
export const runLifecycleProperties = {
  status: { type: 'string' },
  trigger: { type: 'string' },
  workflowId: { type: 'string', unique: true },
  queuedAt: { type: 'Date' },
  startedAt: { type: 'Date', nullable: true },
  finishedAt: { type: 'Date', nullable: true },
  warnings: { type: 'json' },
  failureCode: { type: 'string', nullable: true },
  failureMessage: { type: 'text', nullable: true },
  attempts: { type: 'integer' },
  requestedByUserId: { type: 'integer', nullable: true },
  requestedByTokenId: { type: 'integer', nullable: true },
} satisfies Record<keyof RunLifecycle, EntitySchemaProperty<unknown, unknown>>;
