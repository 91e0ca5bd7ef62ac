import type { Middleware } from 'koa';
import { errorBody } from '../envelope';
import { ApiError } from '../errors';

/** Turns thrown errors into envelopes: ApiError keeps its status and code; anything else is a bare 500. */
export function errorEnvelope(): Middleware {
  return async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    try {
      await next();
    } catch (error) {
      if (error instanceof ApiError) {
        ctx.status = error.status;
        ctx.body = errorBody(error.code, error.message, error.extra);
        return;
      }
      // Details stay in the log, never in the response.
      console.error(`request ${String(ctx.state.requestId)} ${ctx.method} ${ctx.path} failed:`, error);
      ctx.status = 500;
      ctx.body = errorBody('internal_error', 'internal error', { request_id: ctx.state.requestId });
    }
  };
}
