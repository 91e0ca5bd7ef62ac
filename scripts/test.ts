/**
 * `npm test`: static checks, contract checks, then the jest suite (which provisions its own
 * stack in test/support/global-setup.ts). Stops at the first failing step. Extra arguments
 * go to jest: `npm test -- test/unit`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { header } from './lib/log';
import { PROJECT_ROOT, nodeBin } from './lib/paths';

interface Step {
  title: string;
  run: () => Promise<void>;
}

let current: ReturnType<typeof spawn> | null = null;

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBin(command), args, { cwd: PROJECT_ROOT, stdio: 'inherit' });
    current = child;
    child.once('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      current = null;
      if (code === 0) resolve();
      else reject(new Error(`${command} failed (${signal ? `signal ${signal}` : `exit code ${code}`})`));
    });
  });
}

async function contractTypesUpToDate(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-contract-'));
  try {
    const generated = path.join(tmp, 'contract.gen.ts');
    await run('openapi-typescript', ['openapi.yaml', '-o', generated]);
    const committed = path.join(PROJECT_ROOT, 'api', 'contract.gen.ts');
    if (!fs.existsSync(committed)) throw new Error('api/contract.gen.ts is missing: run npm run contract:types');
    if (!fs.readFileSync(generated).equals(fs.readFileSync(committed))) {
      throw new Error('api/contract.gen.ts is out of date with openapi.yaml: run npm run contract:types');
    }
    process.stderr.write('api/contract.gen.ts matches openapi.yaml\n');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const jestArgs = process.argv.slice(2);

const steps: Step[] = [
  { title: 'lint (eslint .)', run: () => run('eslint', ['.']) },
  { title: 'type check (tsc --noEmit)', run: () => run('tsc', ['--noEmit']) },
  { title: 'contract lint (redocly lint)', run: () => run('redocly', ['lint', '--config', 'redocly.yaml', 'openapi.yaml']) },
  { title: 'contract types up to date (openapi-typescript)', run: contractTypesUpToDate },
  { title: `tests (jest${jestArgs.length ? ` ${jestArgs.join(' ')}` : ''})`, run: () => run('jest', ['--runInBand=false', ...jestArgs]) },
];

// The terminal's Ctrl-C reaches the step's process too; just make sure we exit after it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    current?.kill(signal);
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  for (const [i, s] of steps.entries()) {
    header(`[${i + 1}/${steps.length}] ${s.title}`);
    const t0 = Date.now();
    try {
      await s.run();
    } catch (err) {
      process.stderr.write(`\nFAILED: ${s.title}: ${(err as Error).message}\n`);
      process.exit(1);
    }
    process.stderr.write(`ok (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
  process.stderr.write(`\nall checks passed in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

void main();
