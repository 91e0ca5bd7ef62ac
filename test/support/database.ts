import { randomBytes } from 'node:crypto';
import { migrateUp } from '../../db/migrate';
import { withPgClient } from '../../scripts/lib/pg-client';
import { stackEnv } from './stack-env';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file, dropped afterwards. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = stackEnv().pgAdminUrl;
  const name = `bcp_test_${randomBytes(6).toString('hex')}`;
  await withPgClient(adminUrl, (c) => c.query(`create database ${c.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrateUp(url.toString());
  return {
    url: url.toString(),
    drop: () =>
      withPgClient(adminUrl, async (c) => {
        await c.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
        await c.query(`drop database if exists ${c.escapeIdentifier(name)}`);
      }),
  };
}
