import { resolve } from 'node:path';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { loadConfig } from '../common/config';
import { log } from '../common/log';
import { openOrm } from '../db/orm';
import { SecretBox } from '../db/secret-box';
import { verifySecretKey } from '../db/secret-key-check';
import { createWorker } from './create-worker';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

async function main(): Promise<void> {
  // The SDK's own lines (worker state, workflow and activity logs) in the same JSON log; it filters by LOG_LEVEL.
  Runtime.install({ logger: new DefaultLogger('TRACE', ({ level, message, meta }) => log[LEVELS[level]]({ ...meta }, message)) });
  const config = loadConfig();
  const orm = await openOrm(config.databaseUrl);
  const secrets = new SecretBox(config.secretKey);
  await verifySecretKey(orm.em.fork(), secrets);
  const { worker, close } = await createWorker({
    temporal: config.temporal,
    activityDeps: {
      orm,
      secrets,
      resticBinary: config.resticBinary,
      protectedPaths: process.env.SECRET_KEY_FILE ? [resolve(process.env.SECRET_KEY_FILE)] : [],
    },
  });
  log.info({ task_queue: config.temporal.taskQueue, address: config.temporal.address, namespace: config.temporal.namespace }, `worker polling task queue ${config.temporal.taskQueue}`);
  // Worker.run() returns after SIGINT/SIGTERM once in-flight tasks are handed back.
  await worker.run();
  await close();
  await orm.close();
}

main().catch((error: unknown) => {
  log.error({ err: error }, 'worker failed');
  process.exit(1);
});
