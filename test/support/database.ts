import { randomBytes } from 'node:crypto';
import { migrateUp } from '../../db/migrate';
import { createDatabaseIfMissing, dropDatabase, withDatabase } from '../../scripts/lib/pg-client';
import { stackEnv } from './stack-env';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file, dropped afterwards. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = stackEnv().pgAdminUrl;
  const name = `bcp_test_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(adminUrl, name);
  const url = withDatabase(adminUrl, name);
  await migrateUp(url);
  return { url, drop: () => dropDatabase(adminUrl, name) };
}
