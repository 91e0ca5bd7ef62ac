import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';
import { RunLifecycle, runLifecycleProperties } from './run-lifecycle';

export type RestoreDestinationMode = 'managed' | 'original';

/** One restore of a snapshot (its workflow is `restore-<id>`); history outlives the repository and host. */
export class Restore extends RunLifecycle<'api'> {
  [OptionalProps]?: 'summary' | 'output' | 'resolvedTarget';
  id!: number;
  repoId!: number;
  repoName!: string;
  /** The full id of the snapshot restored (resolved from a short id or `latest` when asked). */
  snapshotId!: string;
  hostId: number | null = null;
  hostName: string | null = null;
  destinationMode: Opt<RestoreDestinationMode> = 'managed';
  appendContextSubdir: Opt<boolean> = true;
  include: Opt<string[]> = [];
  mode!: string;
  resolvedTarget: string | null = null;
  startedBy!: string;
  output: string | null = null;
  summary: Record<string, unknown> | null = null;
}

export const RestoreSchema = new EntitySchema<Restore>({
  class: Restore,
  tableName: 'restores',
  properties: {
    ...runLifecycleProperties,
    id: { type: 'integer', primary: true, autoincrement: true },
    repoId: { type: 'integer' },
    repoName: { type: 'string' },
    snapshotId: { type: 'string' },
    hostId: { type: 'integer', nullable: true },
    hostName: { type: 'string', nullable: true },
    destinationMode: { type: 'string' },
    appendContextSubdir: { type: 'boolean' },
    include: { type: 'json' },
    mode: { type: 'string' },
    resolvedTarget: { type: 'text', nullable: true },
    startedBy: { type: 'string' },
    output: { type: 'text', nullable: true },
    summary: { type: 'json', nullable: true },
  },
});
