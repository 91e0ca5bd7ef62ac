import type { Middleware } from 'koa';
import { isMutation } from '../http';
import type { ApiState } from '../context';


/**
 * `X-Dry-Run: 1|true` on a mutation: the handler authorises and validates everything, then
 * answers with `respondDryRun` instead of changing anything. A handler that returns without
 * taking that exit is a defect, reported as one rather than passed off as a dry run.
 */
export function dryRun(): Middleware<ApiState> {
  return async (ctx, next) => {
    const flag = ctx.get('x-dry-run').toLowerCase();
    ctx.state.dryRun = isMutation(ctx.method) && (flag === '1' || flag === 'true');
    await next();
    const body = ctx.body as { data?: { dry_run?: unknown } } | null;
    if (ctx.state.dryRun && body?.data?.dry_run !== true) {
      throw new Error(`${ctx.state.operation?.operationId ?? ctx.path} answered a dry run without taking its dry-run exit`);
    }
  };
}
