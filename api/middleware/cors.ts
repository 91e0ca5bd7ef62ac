import type { Context, Middleware } from 'koa';
import { readSettings } from '../../common/settings';
import { authOf, type ApiContext, type ApiState } from '../context';
import { ApiError } from '../errors';

const allows = (origins: readonly string[], origin: string) => origins.includes('*') || origins.includes(origin);

function allowOrigin(ctx: Context, origin: string): void {
  ctx.set('Access-Control-Allow-Origin', origin);
  ctx.vary('Origin');
  ctx.set('Access-Control-Expose-Headers', 'Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Idempotent-Replay, X-Request-Id');
}

/**
 * CORS for origins of the global allow-list (`api_cors_allowed_origins`): answers their
 * preflights, and lets browsers read every answer to them, errors included. Other origins get
 * no CORS headers (and 403 on a preflight).
 */
export function cors(): Middleware<ApiState> {
  return async (ctx, next) => {
    const origin = ctx.get('origin');
    if (!origin) return next();
    const { api_cors_allowed_origins: origins } = await readSettings(ctx.state.em, ['api_cors_allowed_origins']);
    ctx.state.originAllowed = allows(origins, origin);
    if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
      ctx.state.routeTemplate = '(CORS preflight)';
      if (!ctx.state.originAllowed) throw new ApiError(403, 'origin_not_allowed', `origin ${origin} is not allowed`);
      allowOrigin(ctx, origin);
      ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
      ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, Idempotency-Key, X-Idempotency-Key, X-Dry-Run');
      ctx.set('Access-Control-Max-Age', '600');
      ctx.status = 204;
      return;
    }
    if (ctx.state.originAllowed) allowOrigin(ctx, origin);
    await next();
  };
}

/**
 * An authenticated request from a browser (one with an Origin) must come from an origin of the
 * global allow-list, narrowed by the token's own `allowed_origins` when it has any.
 */
export function checkOrigin(): Middleware<ApiState> {
  return async (ctx, next) => {
    const origin = ctx.get('origin');
    if (!origin) return next();
    const own = authOf(ctx as ApiContext).token.allowedOrigins;
    if (!ctx.state.originAllowed || (own.length > 0 && !allows(own, origin))) {
      throw new ApiError(403, 'origin_not_allowed', `origin ${origin} is not allowed for this token`);
    }
    await next();
  };
}
