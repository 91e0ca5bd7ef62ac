import { spawn } from 'node:child_process';
import { info } from './log';
import { which } from './which';

export interface DebianPackage {
  /** Absolute path, or a name looked up on PATH (and the sbin directories). */
  command: string;
  /** Debian package that provides it. */
  pkg: string;
}

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

/** The entries whose command is not installed. */
export function missingPackages(packages: DebianPackage[]): DebianPackage[] {
  return packages.filter((p) => which(p.command, SBIN_DIRS) === null);
}

/**
 * Makes sure each command exists; installs the missing ones' packages with apt-get
 * (one `apt-get update`, one `apt-get install`). Needs root when anything is missing.
 */
export async function ensureDebianPackages(packages: DebianPackage[]): Promise<void> {
  const missing = missingPackages(packages);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((p) => p.pkg))];
  const what = missing.map((p) => `${p.command} (${p.pkg})`).join(', ');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(
      `missing: ${what}. Installing them needs root; run: sudo apt-get install -y --no-install-recommends ${pkgs.join(' ')}`,
    );
  }
  if (which('apt-get') === null) {
    throw new Error(`missing: ${what}, and apt-get is not available to install ${pkgs.join(' ')}`);
  }
  info(`installing Debian packages ${pkgs.join(' ')} (missing: ${what})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], env);
  await run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', ...pkgs], env);
  const still = missingPackages(missing);
  if (still.length > 0) {
    throw new Error(`apt-get install succeeded but these are still missing: ${still.map((p) => p.command).join(', ')}`);
  }
}
