import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { buildApp } from '../../api/app';
import { ALL_SCOPES } from '../../api/auth/scopes';
import { generateToken } from '../../api/auth/tokens';
import type { Services } from '../../api/context';
import { contractBackend, readContract } from '../../api/contract';
import { closeServices, createServices } from '../../api/services';
import { servedByWorker, taskQueuePollers } from '../../api/task-queue-pollers';
import type { AppConfig } from '../../common/config';
import { ApiToken, User } from '../../db/entities';
import { ensureFirstAdmin } from '../../db/first-admin';
import { createWorker, WORKFLOW_INTERCEPTOR_MODULES } from '../../worker/create-worker';
import { ensureSearchAttributes } from '../../worker/search-attributes';
import { ApiClient } from './api-client';
import { createTestDatabase } from './database';
import { stackEnv } from './stack-env';
import { waitFor } from './wait';

export interface Caller {
  token: string;
  tokenId: number;
  userId: number;
  /** The harness client, authenticated with this token. */
  api: ApiClient;
}

export interface Harness {
  /** Authenticated as the first admin (all scopes); every response is checked against the contract. */
  api: ApiClient;
  adminToken: string;
  services: Services;
  config: AppConfig;
  /** Mints a token for a new user of `role` with exactly `scopes`. */
  createToken(options: { scopes: string[]; role?: string; readOnly?: boolean }): Promise<string>;
  /**
   * A new user (admin unless `user.role` says otherwise) and a token of theirs, both with any
   * stored field set directly (resource scopes, allow-lists, expiry, ...). All scopes by default.
   */
  createCaller(options?: { user?: Partial<User>; token?: Partial<ApiToken> }): Promise<Caller>;
  /** Runs SQL against this harness's database (to look at or set up what the API cannot show). */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** The number of rows of `table` matching `where`. */
  count(table: string, where?: string, params?: unknown[]): Promise<number>;
  /** Resolves once Temporal has seen a worker poll this harness's task queue (the API refuses to wait for an answer before). */
  workerPolling(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The whole product in one test file: a fresh database, the Koa API on a loopback port and a
 * worker on its own task queue, against the shared Temporal dev server, restic and sshd.
 */
export async function startHarness(options: { worker?: boolean; resticBinary?: string } = {}): Promise<Harness> {
  const stack = stackEnv();
  const database = await createTestDatabase();
  const config: AppConfig = {
    databaseUrl: database.url,
    temporal: {
      address: stack.temporal.address,
      namespace: stack.temporal.namespace,
      taskQueue: `test-${randomUUID()}`,
      uiUrl: 'http://127.0.0.1:8233',
      tls: null,
      apiKey: null,
    },
    resticBinary: options.resticBinary ?? stack.resticBinary,
    secretKey: randomBytes(32),
    api: { host: '127.0.0.1', port: 0 },
  };
  const services = await createServices(config);
  const server: Server = buildApp(services).listen(0, '127.0.0.1');
  // Tests block this process now and then (spawnSync of restic): an idle keep-alive socket must
  // not be closed by the server just as the client, resuming, sends on it (ECONNRESET).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let worker: Worker | null = null;
  let workerRun: Promise<void> | null = null;
  let closeWorker: (() => Promise<void>) | null = null;
  if (options.worker === false) {
    // Without a worker nobody registers them, and workflows started by the API carry them.
    await ensureSearchAttributes(services.temporal.connection as Connection, config.temporal.namespace);
  } else {
    installQuietRuntime();
    ({ worker, close: closeWorker } = await createWorker({
      temporal: config.temporal,
      activityDeps: { orm: services.orm, secrets: services.secrets, resticBinary: config.resticBinary, protectedPaths: [] },
      // The same workflow interceptors as a worker that bundles its own (the request id of runs).
      workflowBundle: await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: quietLogger }),
    }));
    workerRun = worker.run();
  }
  const workerPolling = async () => {
    await waitFor(async () => (servedByWorker(await taskQueuePollers(services, config.temporal.taskQueue)) ? true : undefined), 'a worker polling the task queue', 60_000, 100);
  };
  if (worker) await workerPolling();

  const admin = await ensureFirstAdmin(database.url);
  if (!admin) throw new Error('a fresh database already had users');
  // Suites make far more than 120 requests a minute with this token; rate limits have their own tests.
  await services.orm.em.fork().nativeUpdate(ApiToken, {}, { rateLimitPerMinute: 0 });
  const api = new ApiClient(baseUrl, admin.token, await contractBackend(readContract()));

  function sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
    return services.orm.em.fork().getConnection().execute<T[]>(query, params);
  }

  async function createCaller(options: { user?: Partial<User>; token?: Partial<ApiToken> } = {}): Promise<Caller> {
    const em = services.orm.em.fork();
    const user = em.create(User, { username: `user-${randomUUID().slice(0, 8)}`, role: 'admin', ...options.user });
    const { token, prefix, hash } = generateToken();
    // No rate limit unless a test sets one: suites make many requests with one token.
    const record = em.create(ApiToken, {
      user, name: 'test token', prefix, tokenHash: hash, scopes: [...ALL_SCOPES], rateLimitPerMinute: 0, ...options.token,
    });
    await em.flush();
    return { token, tokenId: record.id, userId: user.id, api: api.withToken(token) };
  }

  return {
    api,
    adminToken: admin.token,
    services,
    config,
    async createToken({ scopes, role = 'admin', readOnly = false }) {
      return (await createCaller({ user: { role }, token: { scopes, readOnly } })).token;
    },
    createCaller,
    sql,
    workerPolling,
    async count(table, where = 'true', params = []) {
      const [row] = await sql<{ n: number }>(`select count(*)::int as n from ${table} where ${where}`, params);
      return row?.n ?? -1;
    },
    async stop() {
      worker?.shutdown();
      await workerRun;
      await closeWorker?.();
      await new Promise((resolve) => server.close(resolve));
      await closeServices(services);
      await database.drop();
    },
  };
}

let runtimeInstalled = false;
/** The SDK's own logs at WARN: worker state changes would bury the test output. */
function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // already installed in this process by an earlier test file
  }
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};
