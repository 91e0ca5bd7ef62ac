/**
 * jest globalSetup: provisions the test stack once per run, in the jest parent process,
 * before any worker starts (workers inherit process.env):
 *   Debian packages (openssh-server, rsync, rclone), Postgres (TEST_PG_ADMIN_URL),
 *   Temporal (TEMPORAL_ADDRESS as given, else an in-memory dev server on free ports),
 *   restic (RESTIC_BINARY), a loopback sshd (TEST_SSHD_*).
 * What it starts is stopped by global-teardown.ts. Test files read it via stack-env.ts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDebianPackages } from '../../scripts/lib/apt';
import { info } from '../../scripts/lib/log';
import { DATA_DIR } from '../../scripts/lib/paths';
import { resolvePostgres } from '../../scripts/lib/postgres';
import { startTestSshd } from '../../scripts/lib/sshd';
import { resolveTemporal } from '../../scripts/lib/temporal';
import { ensureRestic } from '../../scripts/lib/tools';
import { ensureTestDatabaseIdOffsets } from './database';
import { STACK_ENV_VARS as V } from './stack-env';

export interface TestStackHandle {
  logDir: string;
  stops: { name: string; stop: () => Promise<void> }[];
}

declare global {
  // Shared with global-teardown.ts (same process and context under jest 30).
  var __BACKUP_CONTROL_PLANE_TEST_STACK__: TestStackHandle | undefined;
}

export async function stopTestStack(handle: TestStackHandle): Promise<void> {
  const errors: string[] = [];
  while (handle.stops.length > 0) {
    const { name, stop } = handle.stops.pop() as TestStackHandle['stops'][number];
    try {
      await stop();
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) throw new Error(`stopping the test stack failed: ${errors.join('; ')}`);
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  process.stderr.write('\n');
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-test-stack-'));
  const handle: TestStackHandle = { logDir, stops: [] };
  globalThis.__BACKUP_CONTROL_PLANE_TEST_STACK__ = handle;
  info(`provisioning the test stack (logs: ${logDir})`);

  try {
    await ensureDebianPackages([
      { command: '/usr/sbin/sshd', pkg: 'openssh-server' },
      { command: 'rsync', pkg: 'rsync' },
      { command: 'rclone', pkg: 'rclone' },
    ]);

    // Independent: provision in parallel, and stop whatever did start if one fails.
    const [pg, temporal, restic, sshd] = await Promise.allSettled([
      resolvePostgres({
        database: 'backup_control_plane_test_admin',
        dataDir: path.join(DATA_DIR, 'postgres-test'),
        logFile: path.join(logDir, 'postgres.log'),
      }),
      resolveTemporal({ persistent: false, preferDefaultPorts: false, logFile: path.join(logDir, 'temporal.log') }),
      ensureRestic(),
      startTestSshd({ dir: path.join(logDir, 'sshd') }),
    ]);
    if (pg.status === 'fulfilled' && pg.value.stop) handle.stops.push({ name: 'embedded Postgres', stop: pg.value.stop });
    if (temporal.status === 'fulfilled' && temporal.value.stop) handle.stops.push({ name: 'Temporal dev server', stop: temporal.value.stop });
    if (sshd.status === 'fulfilled') handle.stops.push({ name: 'sshd', stop: () => sshd.value.stop() });
    const failed = [pg, temporal, restic, sshd].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new Error(failed.map((r) => (r.reason as Error).message ?? String(r.reason)).join('\n'));
    if (pg.status !== 'fulfilled' || temporal.status !== 'fulfilled' || restic.status !== 'fulfilled' || sshd.status !== 'fulfilled') {
      throw new Error('unreachable');
    }

    const env: Record<string, string> = {
      [V.pgAdminUrl]: pg.value.url,
      [V.temporalAddress]: temporal.value.address,
      [V.temporalNamespace]: temporal.value.namespace,
      [V.resticBinary]: restic.value,
      [V.sshdHost]: sshd.value.host,
      [V.sshdPort]: String(sshd.value.port),
      [V.sshdUser]: sshd.value.user,
      [V.sshdAuthorizedKeys]: sshd.value.authorizedKeysFile,
      [V.sshdHostFingerprint]: sshd.value.hostKeyFingerprint,
      [V.logDir]: logDir,
    };
    Object.assign(process.env, env);
    await ensureTestDatabaseIdOffsets(pg.value.url);
    // The API's access log and the workers' logs would bury jest's own output: warnings and errors only, unless asked.
    process.env.LOG_LEVEL ??= 'warn';
    // Code under test that loads the app config needs a key; a throwaway one per run.
    if (!process.env.SECRET_KEY && !process.env.SECRET_KEY_FILE) {
      process.env.SECRET_KEY = crypto.randomBytes(32).toString('base64');
    }
    info(
      `test stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s: Postgres ${pg.value.source}, ` +
        `Temporal ${temporal.value.source} ${temporal.value.address}, sshd 127.0.0.1:${sshd.value.port}, restic ${restic.value}`,
    );
  } catch (err) {
    await stopTestStack(handle).catch(() => undefined);
    throw err;
  }
}
