import Koa, { type Middleware } from 'koa';
import compose from 'koa-compose';
import type { ApiState, Services } from './context';
import { authenticate, requireScope } from './auth/authenticate';
import { handlers } from './handlers';
import { jsonBody } from './middleware/body';
import { apiGate } from './middleware/api-gate';
import { activityLog } from './middleware/activity-log';
import { accessLog } from './middleware/access-log';
import { auditLog } from './middleware/audit-log';
import { checkOrigin, cors } from './middleware/cors';
import { dryRun } from './middleware/dry-run';
import { idempotency } from './middleware/idempotency';
import { rateLimit } from './middleware/rate-limit';
import { resourceScope } from './middleware/resource-scope';
import { dispatch, matchOperation, validateRequest } from './middleware/contract';
import { errorEnvelope } from './middleware/errors';
import { requestId } from './middleware/request-id';
import { httpMetrics } from './metrics';
import { swaggerUiAssets } from './swagger-ui';

/** Middleware that only concerns authenticated requests (public operations skip it). */
function onlyAuthenticated(...chain: Middleware<ApiState>[]): Middleware<ApiState> {
  const run = compose(chain);
  return (ctx, next) => (ctx.state.auth ? run(ctx, next) : next());
}

/** A fresh MikroORM identity map per request. */
function entityManager(services: Services): Middleware<ApiState> {
  return async (ctx, next) => {
    ctx.state.em = services.orm.em.fork();
    await next();
  };
}

/**
 * The API: request id -> access log -> request metrics -> audit log -> error envelope -> Swagger
 * assets -> CORS (preflights) -> contract match (404/405) -> global switch (503) -> bearer auth and address (401/403) -> origin
 * (403) -> rate limit (429) -> scope (403) -> JSON body (400) -> contract validation (422) ->
 * resource scope (403) -> dry run -> idempotency (replay, 409, 422) -> activity log -> handler by operationId
 * (or 501).
 */
export function buildApp(services: Services): Koa<ApiState, { services: Services }> {
  // TRUST_PROXY=<n>: n reverse proxies append to X-Forwarded-For; only their entries are believed
  // (the leftmost ones are whatever the client sent).
  const proxies = Math.max(0, Math.trunc(Number(process.env.TRUST_PROXY) || 0));
  const app = new Koa<ApiState, { services: Services }>({ proxy: proxies > 0, maxIpsCount: proxies });
  app.context.services = services;
  const assets = swaggerUiAssets();
  app.use(requestId());
  app.use(accessLog());
  app.use(httpMetrics());
  app.use(auditLog(services));
  app.use(errorEnvelope());
  app.use(assets.routes());
  app.use(entityManager(services));
  app.use(cors());
  app.use(matchOperation(services.contract));
  app.use(apiGate(services));
  app.use(authenticate(services));
  app.use(onlyAuthenticated(checkOrigin(), rateLimit(), requireScope(services)));
  app.use(jsonBody());
  app.use(validateRequest(services.contract));
  app.use(onlyAuthenticated(resourceScope(), dryRun(), idempotency()));
  app.use(onlyAuthenticated(activityLog()));
  app.use(dispatch(handlers));
  return app;
}
