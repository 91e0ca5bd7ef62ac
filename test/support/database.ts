import { randomBytes } from 'node:crypto';
import { migrateUp } from '../../db/migrate';
import { createDatabaseIfMissing, dropDatabase, withDatabase, withPgClient } from '../../scripts/lib/pg-client';
import { stackEnv } from './stack-env';

/** The admin database's sequence of id offsets (in millions; ids stay below 2^31). */
const ID_OFFSETS = 'test_database_id_offsets';

/** Called once per run, before any test file. Offsets go on from the last run's (its Temporal server may be the same). */
export async function ensureTestDatabaseIdOffsets(adminUrl: string): Promise<void> {
  await withPgClient(adminUrl, (client) => client.query(`create sequence if not exists ${ID_OFFSETS} minvalue 1 maxvalue 2100 cycle`));
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file, dropped afterwards. Its ids start at an offset
 * no other database of the run has: test files share one Temporal namespace, as separate
 * deployments never do, and workflow ids such as `repo-lock-<repoId>` must not meet another
 * file's (a lock workflow of a file whose worker has stopped would hold this file's runs forever).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = stackEnv().pgAdminUrl;
  const name = `bcp_test_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(adminUrl, name);
  const url = withDatabase(adminUrl, name);
  await migrateUp(url);
  const [offset] = await withPgClient(adminUrl, (client) => client.query<{ n: string }>(`select nextval('${ID_OFFSETS}') as n`)).then((r) => r.rows);
  const base = Number(offset?.n) * 1_000_000;
  await withPgClient(url, (client) => client.query(`select setval(c.oid, $1, false) from pg_class c where c.relkind = 'S'`, [base]));
  return { url, drop: () => dropDatabase(adminUrl, name) };
}
