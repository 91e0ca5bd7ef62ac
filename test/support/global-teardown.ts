/** jest globalTeardown: stops exactly what global-setup.ts started, then removes its logs. */
import fs from 'node:fs';
import { info } from '../../scripts/lib/log';
import { stopTestStack } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const handle = globalThis.__BACKUP_CONTROL_PLANE_TEST_STACK__;
  if (!handle) return;
  globalThis.__BACKUP_CONTROL_PLANE_TEST_STACK__ = undefined;
  try {
    await stopTestStack(handle);
  } finally {
    if (process.env.TEST_KEEP_LOGS === '1') info(`test stack logs kept in ${handle.logDir}`);
    else fs.rmSync(handle.logDir, { recursive: true, force: true });
  }
}
