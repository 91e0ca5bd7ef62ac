import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { withLogFields } from '../../common/log';

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when sane) and echoes it back; what the
 * request logs, and the memo of every workflow it starts, carries it as `request_id`.
 */
export function requestId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    ctx.state.requestId = SAFE_ID.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId);
    await withLogFields({ request_id: ctx.state.requestId }, next);
  };
}
