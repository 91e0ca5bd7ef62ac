/**
 * `npm run admin-token [-- <username>]`: prints a new all-scope API token for an admin of the
 * database `npm start` uses (or DATABASE_URL). Tokens are stored hashed, so a lost token cannot
 * be shown again; this mints another one.
 */
import { mintAdminToken } from '../db/first-admin';
import { info } from './lib/log';
import { resolvePostgres } from './lib/postgres';

async function main(): Promise<void> {
  const pg = await resolvePostgres({ database: 'backup_control_plane' });
  try {
    const minted = await mintAdminToken(pg.url, process.argv[2]);
    if (!minted) throw new Error(process.argv[2] ? `no enabled admin named ${process.argv[2]}` : 'no enabled admin user: run npm start first');
    info(`new API token for the admin "${minted.username}", shown only this once:`);
    process.stdout.write(`${minted.token}\n`);
  } finally {
    await pg.stop?.();
  }
}

main().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exit(1);
});
