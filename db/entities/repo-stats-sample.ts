import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';

/** One sample of a repository's size (restic stats, restore-size mode). */
export class RepoStatsSample {
  id!: number;
  repoId!: number;
  snapshotCount!: number;
  totalSize!: number;
  totalFileCount!: number;
  recordedAt: Opt<Date> = new Date();
}

export const RepoStatsSampleSchema = new EntitySchema<RepoStatsSample>({
  class: RepoStatsSample,
  tableName: 'repo_stats_history',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    repoId: { type: 'integer' },
    snapshotCount: { type: 'integer' },
    totalSize: { type: new BigIntType('number') },
    totalFileCount: { type: new BigIntType('number') },
    recordedAt: { type: 'Date' },
  },
});
