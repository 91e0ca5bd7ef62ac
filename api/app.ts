import Koa, { type Middleware } from 'koa';
import type { ApiState, Services } from './context';
import { authenticate } from './auth/authenticate';
import { handlers } from './handlers';
import { jsonBody } from './middleware/body';
import { refuseDryRun } from './middleware/dry-run';
import { dispatch, matchOperation, validateRequest } from './middleware/contract';
import { errorEnvelope } from './middleware/errors';
import { requestId } from './middleware/request-id';
import { swaggerUiAssets } from './swagger-ui';

/** A fresh MikroORM identity map per request. */
function entityManager(services: Services): Middleware<ApiState> {
  return async (ctx, next) => {
    ctx.state.em = services.orm.em.fork();
    await next();
  };
}

/**
 * The API: request id -> error envelope -> Swagger assets -> contract match (404/405) -> bearer
 * auth and scope (401/403) -> JSON body (400) -> contract validation (422) -> handler by
 * operationId (or 501).
 */
export function buildApp(services: Services): Koa<ApiState, { services: Services }> {
  const app = new Koa<ApiState, { services: Services }>({ proxy: process.env.TRUST_PROXY === '1' });
  app.context.services = services;
  const assets = swaggerUiAssets();
  app.use(requestId());
  app.use(errorEnvelope());
  app.use(assets.routes());
  app.use(entityManager(services));
  app.use(matchOperation(services.contract));
  app.use(authenticate(services));
  app.use(jsonBody());
  app.use(validateRequest(services.contract));
  app.use(refuseDryRun());
  app.use(dispatch(handlers));
  return app;
}
