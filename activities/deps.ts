import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { TemporalConfig } from '../common/config';
import type { SecretBox } from '../db/secret-box';

/** What activities need from the worker process. */
export interface ActivityDeps {
  orm: MikroORM;
  secrets: SecretBox;
  /** restic on the worker machine (remote hosts use their own `restic_path`). */
  resticBinary: string;
  /** Files of the worker that local backups must never read (the secret key file). */
  protectedPaths: string[];
  /** Temporal, for activities that signal or describe other workflows (repository locks). */
  temporal: Client;
  /** The task queue and namespace this worker serves (schedules it re-makes start runs there). */
  temporalConfig: TemporalConfig;
}
