import { openOrm } from './orm';

/** Applies every pending migration to the database at `databaseUrl`; returns the names applied. */
export async function migrateUp(databaseUrl: string): Promise<string[]> {
  const orm = await openOrm(databaseUrl, 1);
  try {
    const applied = await orm.getMigrator().up();
    return applied.map((m) => m.name);
  } finally {
    await orm.close(true);
  }
}
