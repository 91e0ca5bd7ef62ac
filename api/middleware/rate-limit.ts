import type { Middleware } from 'koa';
import { takeHit } from '../auth/rate-limit';
import { authOf, type ApiContext, type ApiState } from '../context';
import { ApiError } from '../errors';

/**
 * The token's `rate_limit_per_minute` (0 = none), counted in Postgres so that every API process
 * shares it, against the budget of the token it draws from (its own, or its creator's).
 */
export function rateLimit(): Middleware<ApiState> {
  return async (ctx, next) => {
    const { token } = authOf(ctx as ApiContext);
    if (token.rateLimitPerMinute <= 0) return next();
    const decision = await takeHit(ctx.state.em, `token:${token.rateBudgetTokenId ?? token.id}`, token.rateLimitPerMinute);
    ctx.set('X-RateLimit-Limit', String(decision.limit));
    ctx.set('X-RateLimit-Remaining', String(decision.remaining));
    ctx.set('X-RateLimit-Reset', String(decision.reset));
    if (!decision.allowed) {
      ctx.set('Retry-After', String(decision.retryAfter));
      throw new ApiError(429, 'rate_limited', `this token may make ${decision.limit} requests per minute; retry in ${decision.retryAfter} s`, { retry_after: decision.retryAfter });
    }
    await next();
  };
}
