import { randomBytes, randomInt } from 'node:crypto';
import { migrateUp } from '../../db/migrate';
import { createDatabaseIfMissing, dropDatabase, withDatabase, withPgClient } from '../../scripts/lib/pg-client';
import { stackEnv } from './stack-env';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file, dropped afterwards. Its ids start at a random
 * offset: test files share one Temporal namespace, as separate deployments never do, and workflow
 * ids such as `repo-lock-<repoId>` must not meet another file's.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = stackEnv().pgAdminUrl;
  const name = `bcp_test_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(adminUrl, name);
  const url = withDatabase(adminUrl, name);
  await migrateUp(url);
  const base = randomInt(1, 1000) * 1_000_000;
  await withPgClient(url, (client) => client.query(`select setval(c.oid, $1, false) from pg_class c where c.relkind = 'S'`, [base]));
  return { url, drop: () => dropDatabase(adminUrl, name) };
}
