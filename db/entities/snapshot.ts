import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';

/** The catalogue of a repository's snapshots, as restic last listed them. */
export class Snapshot {
  [OptionalProps]?: 'excludes' | 'summary';
  repoId!: number;
  id!: string;
  shortId!: string;
  time!: Date;
  /** restic's own timestamp string, kept verbatim (nanosecond precision). */
  timeText!: string;
  tree!: string;
  parent: string | null = null;
  paths: Opt<string[]> = [];
  hostname!: string;
  username!: string;
  uid: number | null = null;
  gid: number | null = null;
  excludes: string[] | null = null;
  tags: Opt<string[]> = [];
  programVersion: string | null = null;
  summary: Record<string, unknown> | null = null;
}

export const SnapshotSchema = new EntitySchema<Snapshot>({
  class: Snapshot,
  tableName: 'snapshots',
  properties: {
    repoId: { type: 'integer', primary: true },
    id: { type: 'string', primary: true },
    shortId: { type: 'string' },
    time: { type: 'Date' },
    timeText: { type: 'string' },
    tree: { type: 'string' },
    parent: { type: 'string', nullable: true },
    paths: { type: 'json' },
    hostname: { type: 'string' },
    username: { type: 'string' },
    uid: { type: 'integer', nullable: true },
    gid: { type: 'integer', nullable: true },
    excludes: { type: 'json', nullable: true },
    tags: { type: 'json' },
    programVersion: { type: 'string', nullable: true },
    summary: { type: 'json', nullable: true },
  },
});
