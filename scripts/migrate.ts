/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL and, on a database without users,
 * creates the first admin and prints its API token once (for deployments that do not use npm start).
 */
import { ensureFirstAdmin } from '../db/first-admin';
import { migrateUp } from '../db/migrate';

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL must be set');
  const applied = await migrateUp(databaseUrl);
  console.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'the database schema is up to date');
  const admin = await ensureFirstAdmin(databaseUrl);
  if (admin) {
    console.log(`created the admin user "${admin.username}"; its API token, shown only this once:`);
    console.log(`  ${admin.token}`);
  }
}

main().catch((error: unknown) => {
  console.error('migration failed:', error);
  process.exit(1);
});
