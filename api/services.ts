import { Client, Connection } from '@temporalio/client';
import type { AppConfig } from '../common/config';
import { temporalConnectionOptions } from '../common/temporal';
import { openOrm } from '../db/orm';
import { SecretBox } from '../db/secret-box';
import type { Services } from './context';
import { contractBackend, readContract } from './contract';
import { requestIdMemo } from './workflow-calls';

/** Opens what the API needs: the database, a Temporal client and the parsed contract. */
export async function createServices(config: AppConfig): Promise<Services> {
  const document = readContract();
  const [orm, contract] = await Promise.all([openOrm(config.databaseUrl), contractBackend(document)]);
  // Connects on first use: the API serves what needs no workflow even while Temporal is down.
  const connection = Connection.lazy(temporalConnectionOptions(config.temporal));
  return {
    orm,
    temporal: new Client({ connection, namespace: config.temporal.namespace, interceptors: { workflow: [requestIdMemo] } }),
    temporalConfig: config.temporal,
    secrets: new SecretBox(config.secretKey),
    contract,
    document,
  };
}

export async function closeServices(services: Services): Promise<void> {
  await services.temporal.connection.close();
  await services.orm.close();
}
