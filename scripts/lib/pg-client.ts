import { Client } from 'pg';

/** Small helpers over `pg` for provisioning and tests: connect, run a statement, disconnect. */
export type PgClient = Client;

/** Opens a connection to `url`, runs `fn`, always closes it. */
export async function withPgClient<T>(url: string, fn: (client: PgClient) => Promise<T>, connectTimeoutMs = 5000): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  client.on('error', () => undefined); // a dropped idle connection must not crash the script
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True when `url` accepts a connection and answers `select 1`. */
export async function canConnect(url: string, connectTimeoutMs = 3000): Promise<boolean> {
  try {
    await withPgClient(url, (c) => c.query('select 1'), connectTimeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** Creates database `name` through `adminUrl` unless it exists (safe against a concurrent creator). */
export async function createDatabaseIfMissing(adminUrl: string, name: string): Promise<boolean> {
  return withPgClient(adminUrl, async (client) => {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rows.length > 0) return false;
    try {
      await client.query(`create database ${client.escapeIdentifier(name)}`);
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '42P04' /* duplicate_database */ || code === '23505' /* unique_violation on pg_database */) return false;
      throw err;
    }
  });
}

/** `url` with its database replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Drops database `name` through `adminUrl`, closing its remaining connections first. */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withPgClient(adminUrl, async (client) => {
    await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
    await client.query(`drop database if exists ${client.escapeIdentifier(name)}`);
  });
}
