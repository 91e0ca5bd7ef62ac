import type { Middleware } from 'koa';
import { readSettings } from '../../common/settings';
import type { ApiState, Services } from '../context';
import { requiredScopes } from '../contract';
import { ApiError } from '../errors';

/**
 * The global switch: with `api_enabled` off every authenticated operation answers 503
 * (health, the contract and the docs still answer). Reads the settings the rest of the request
 * needs in the same query.
 */
export function apiGate(services: Pick<Services, 'document'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation;
    if (!operation || requiredScopes(operation, services.document) === null) return next();
    const settings = await readSettings(ctx.state.em, ['api_enabled', 'api_cors_allowed_origins']);
    if (!settings.api_enabled) throw new ApiError(503, 'api_disabled', 'the API is disabled on this server');
    ctx.state.gate = { corsAllowedOrigins: settings.api_cors_allowed_origins };
    await next();
  };
}
