import os from 'node:os';
import path from 'node:path';

/** Root of the clone (the directory holding package.json). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Local state of `npm start` (embedded Postgres, Temporal db, secret key, logs): `DATA_DIR` or `<root>/.data`. */
export const DATA_DIR = process.env.DATA_DIR ? path.resolve(process.env.DATA_DIR) : path.join(PROJECT_ROOT, '.data');

/** Tool cache shared by every clone, session and CI run: `${XDG_CACHE_HOME:-~/.cache}/backup-control-plane/bin`. */
export const TOOL_CACHE = path.join(
  process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'),
  'backup-control-plane',
  'bin',
);

/** Binaries installed by the project (node_modules/.bin). */
export function nodeBin(name: string): string {
  return path.join(PROJECT_ROOT, 'node_modules', '.bin', name);
}
