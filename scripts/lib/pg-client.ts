/**
 * A minimal typed view of `pg` (brought by @mikro-orm/postgresql; @types/pg is not installed),
 * enough for the provisioning scripts: connect, run a statement, disconnect.
 */

export interface PgClient {
  connect(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): void;
  escapeIdentifier(name: string): string;
}

interface PgModule {
  Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pg = require('pg') as PgModule;

/** Opens a connection to `url`, runs `fn`, always closes it. */
export async function withPgClient<T>(url: string, fn: (client: PgClient) => Promise<T>, connectTimeoutMs = 5000): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
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
