import { DriverException } from '@mikro-orm/core';
import type { Middleware } from 'koa';
import { log } from '../../common/log';
import type { ApiState } from '../context';
import { errorBody } from '../envelope';
import { ApiError } from '../errors';
import { routeOf } from './audit-log';

/**
 * What the log keeps of an unexpected error. A database driver's error carries the query and its
 * parameter values (a password hash, a sealed secret) in its message, stack and detail: of it,
 * only what names the failure.
 */
export function loggedError(error: unknown): unknown {
  if (!(error instanceof DriverException)) return error;
  // Where it failed, without the message (the SQL with its values): the stack's frames and the server's labels.
  const fields = error as DriverException & Partial<Record<'constraint' | 'table' | 'column' | 'routine', string>>;
  const labels = Object.fromEntries((['constraint', 'table', 'column', 'routine'] as const).filter((key) => fields[key]).map((key) => [key, fields[key]]));
  return { name: error.name, code: error.code, ...labels, stack: error.stack?.split('\n').filter((line) => line.trimStart().startsWith('at ')).join('\n') };
}

/** Turns thrown errors into envelopes: ApiError keeps its status and code; anything else is a bare 500. */
export function errorEnvelope(): Middleware<ApiState> {
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
      log.error({ err: loggedError(error), method: ctx.method, route: routeOf(ctx) }, 'request failed');
      ctx.status = 500;
      ctx.body = errorBody('internal_error', 'internal error', { request_id: ctx.state.requestId });
    }
  };
}
