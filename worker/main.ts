import { resolve } from 'node:path';
import { loadConfig } from '../common/config';
import { openOrm } from '../db/orm';
import { SecretBox } from '../db/secret-box';
import { verifySecretKey } from '../db/secret-key-check';
import { createWorker } from './create-worker';

async function main(): Promise<void> {
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
  console.log(`worker polling task queue ${config.temporal.taskQueue} on ${config.temporal.address} (namespace ${config.temporal.namespace})`);
  // Worker.run() returns after SIGINT/SIGTERM once in-flight tasks are handed back.
  await worker.run();
  await close();
  await orm.close();
}

main().catch((error: unknown) => {
  console.error('worker failed:', error);
  process.exit(1);
});
