import type { Middleware } from 'koa';
import { log } from '../../common/log';
import type { ApiState } from '../context';
import { routeOf } from './audit-log';

/**
 * One log line per request once its answer is known: method, operationId, route template,
 * status, duration and token id (the request id comes with the log's fields). Never headers,
 * bodies or the raw path, which may hold secrets.
 */
export function accessLog(): Middleware<ApiState> {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      log.info(
        {
          method: ctx.method,
          operation_id: ctx.state.operation?.operationId ?? null,
          route: routeOf(ctx),
          status: ctx.status,
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
          token_id: ctx.state.caller?.tokenId ?? null,
        },
        'request',
      );
    }
  };
}
