/**
 * `npm run setting -- <key> [<json value>]`: prints a setting of the database `npm start` uses
 * (or DATABASE_URL), or changes it. The way back when `api_enabled` was switched off through
 * the API: `npm run setting -- api_enabled true`.
 */
import { isSettingKey, readSettings, settingValueProblem, writeSetting } from '../common/settings';
import { openOrm } from '../db/orm';
import { info } from './lib/log';
import { resolvePostgres } from './lib/postgres';

async function main(): Promise<void> {
  const [key = '', text] = process.argv.slice(2);
  if (!isSettingKey(key)) throw new Error(`usage: npm run setting -- <key> [<json value>]; unknown setting "${key}"`);
  const pg = await resolvePostgres({ database: 'backup_control_plane' });
  const orm = await openOrm(pg.url, 1);
  try {
    const em = orm.em.fork();
    if (text !== undefined) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = text; // a bare word is a string
      }
      const problem = settingValueProblem(key, value);
      if (problem) throw new Error(`${key} ${problem}`);
      await writeSetting(em, key, value);
      info(`${key} changed`);
    }
    process.stdout.write(`${JSON.stringify((await readSettings(em, [key]))[key])}\n`);
  } finally {
    await orm.close(true);
    await pg.stop?.();
  }
}

main().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exit(1);
});
