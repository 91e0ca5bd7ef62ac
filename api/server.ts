import { loadConfig } from '../common/config';
import { log } from '../common/log';
import { verifySecretKey } from '../db/secret-key-check';
import { buildApp } from './app';
import { schedulePurges } from './retention';
import { closeServices, createServices } from './services';

async function main(): Promise<void> {
  const config = loadConfig();
  const services = await createServices(config);
  await verifySecretKey(services.orm.em.fork(), services.secrets);
  const server = buildApp(services).listen(config.api.port, config.api.host, () => {
    log.info(`API listening on http://${config.api.host}:${config.api.port}/api/v1`);
  });
  const stopPurges = schedulePurges(() => services.orm.em.fork());
  const stop = () => {
    stopPurges();
    server.close(() => {
      closeServices(services).finally(() => process.exit(0));
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  log.error({ err: error }, 'API failed to start');
  process.exit(1);
});
