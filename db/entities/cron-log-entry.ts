import { EntitySchema, type Opt } from '@mikro-orm/core';

export type CronJobType = 'backup' | 'copy' | 'cron_run' | 'weekly_report' | 'auto_check' | 'db_vacuum' | 'scheduler_task';
export type CronStatus = 'success' | 'failed' | 'skipped' | 'error';

/** The outcome of one scheduled action (a job's schedule firing, a global task, or a reconciliation of the schedules: `cron_run`). */
export class CronLogEntry {
  id!: number;
  jobType!: CronJobType;
  jobId: number | null = null;
  /** What scope filtering needs: the job's repository and host. */
  repoId: number | null = null;
  hostId: number | null = null;
  status!: CronStatus;
  output: string | null = null;
  runId: string | null = null;
  workflowId: string | null = null;
  ranAt: Opt<Date> = new Date();
}

export const CronLogEntrySchema = new EntitySchema<CronLogEntry>({
  class: CronLogEntry,
  tableName: 'cron_log',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    jobType: { type: 'string' },
    jobId: { type: 'integer', nullable: true },
    repoId: { type: 'integer', nullable: true },
    hostId: { type: 'integer', nullable: true },
    status: { type: 'string' },
    output: { type: 'text', nullable: true },
    runId: { type: 'string', nullable: true },
    workflowId: { type: 'string', nullable: true },
    ranAt: { type: 'Date' },
  },
});
