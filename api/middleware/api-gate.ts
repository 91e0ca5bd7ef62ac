import type { Middleware } from 'koa';
import { readSettings } from '../../common/settings';
import type { ApiState, Services } from '../context';
import { requiredScopes } from '../contract';
import { ApiError } from '../errors';

/** The global switch: with `api_enabled` off every authenticated operation answers 503 (health, the contract and the docs still answer). */
export function apiGate(services: Pick<Services, 'document'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation;
    if (!operation || requiredScopes(operation, services.document) === null) return next();
    const { api_enabled: enabled } = await readSettings(ctx.state.em, ['api_enabled']);
    if (!enabled) throw new ApiError(503, 'api_disabled', 'the API is disabled on this server');
    await next();
  };
}
