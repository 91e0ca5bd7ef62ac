import type { Middleware } from 'koa';
import { invalidField } from '../errors';

/**
 * `X-Dry-Run` is in the contract, but mutations cannot honour it yet: refuse it rather than
 * perform a change the caller asked only to validate.
 */
export function refuseDryRun(): Middleware {
  return async (ctx, next) => {
    const flag = ctx.get('x-dry-run').toLowerCase();
    if (flag === '1' || flag === 'true') {
      throw invalidField('X-Dry-Run', 'dry runs are not supported yet by this server; nothing was changed');
    }
    await next();
  };
}
