import type { Context, Middleware } from 'koa';
import { readSettings } from '../../common/settings';
import type { ApiState } from '../context';
import { authOf, type ApiContext } from '../context';
import { ApiError } from '../errors';

const allows = (origins: readonly string[], origin: string) => origins.includes('*') || origins.includes(origin);

function allowOrigin(ctx: Context, origin: string): void {
  ctx.set('Access-Control-Allow-Origin', origin);
  ctx.vary('Origin');
  ctx.set('Access-Control-Expose-Headers', 'Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Idempotent-Replay, X-Request-Id');
}

/** Answers a CORS preflight for an origin of the global allow-list (`api_cors_allowed_origins`). */
export function corsPreflight(): Middleware<ApiState> {
  return async (ctx, next) => {
    const origin = ctx.get('origin');
    if (ctx.method !== 'OPTIONS' || !origin || !ctx.get('access-control-request-method')) return next();
    const { api_cors_allowed_origins: origins } = await readSettings(ctx.state.em, ['api_cors_allowed_origins']);
    if (!allows(origins, origin)) throw new ApiError(403, 'origin_not_allowed', `origin ${origin} is not allowed`);
    allowOrigin(ctx, origin);
    ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
    ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, Idempotency-Key, X-Idempotency-Key, X-Dry-Run');
    ctx.set('Access-Control-Max-Age', '600');
    ctx.status = 204;
  };
}

/**
 * A browser request (one with an Origin) must come from an origin the token allows, or, for a
 * token without its own list, one the global allow-list allows.
 */
export function checkOrigin(): Middleware<ApiState> {
  return async (ctx, next) => {
    const origin = ctx.get('origin');
    if (!origin) return next();
    const { token } = authOf(ctx as ApiContext);
    const origins = token.allowedOrigins.length > 0 ? token.allowedOrigins : (ctx.state.gate?.corsAllowedOrigins ?? []);
    if (!allows(origins, origin)) throw new ApiError(403, 'origin_not_allowed', `origin ${origin} is not allowed for this token`);
    allowOrigin(ctx, origin);
    await next();
  };
}
