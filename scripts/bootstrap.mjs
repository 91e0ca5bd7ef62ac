#!/usr/bin/env node
// Entry point of `npm start`, `npm test`, `npm run bench`, `npm run admin-token` and `npm run setting`. Plain Node, no dependencies:
// installs node_modules when missing or older than package-lock.json, then runs the
// TypeScript script for the command with tsx, forwarding signals and its exit code.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scripts = {
  start: 'scripts/start.ts',
  test: 'scripts/test.ts',
  bench: 'bench/index.ts',
  'admin-token': 'scripts/admin-token.ts',
  setting: 'scripts/setting.ts',
};

const [command, ...args] = process.argv.slice(2);
if (!command || !(command in scripts)) {
  console.error(`usage: node scripts/bootstrap.mjs <${Object.keys(scripts).join('|')}> [args...]`);
  process.exit(2);
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

const lock = mtime(path.join(root, 'package-lock.json'));
const installed = mtime(path.join(root, 'node_modules', '.package-lock.json'));
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
if (installed === null || (lock !== null && installed < lock) || !fs.existsSync(tsx)) {
  console.error(
    installed === null
      ? '[bootstrap] node_modules is missing: running npm ci'
      : '[bootstrap] node_modules is older than package-lock.json: running npm ci',
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`[bootstrap] npm ci failed (${result.error ? result.error.message : `exit ${result.status ?? result.signal}`})`);
    process.exit(result.status || 1);
  }
}

// Node with tsx's loader, not the tsx CLI: the CLI relays signals and SIGKILLs a child that does
// not acknowledge one within 60 ms, which would cut an orderly shutdown short on a busy machine.
const child = spawn(process.execPath, ['--import', 'tsx', scripts[command], ...args], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    // The child may have had it already from the terminal; it de-duplicates.
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}
child.on('error', (err) => {
  console.error(`[bootstrap] cannot run ${scripts[command]} with tsx: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    // Exit like the child did (128 + signal number), without re-raising a handled signal.
    const num = { SIGINT: 2, SIGTERM: 15, SIGKILL: 9, SIGHUP: 1 }[signal] ?? 1;
    process.exit(128 + num);
  }
  process.exit(code ?? 1);
});
