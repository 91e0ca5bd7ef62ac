import type { ApiContext } from './context';
import { respond } from './envelope';

/** Whether this request is a dry run: the handler stops before its first change. */
export const isDryRun = (ctx: ApiContext) => ctx.state.dryRun === true;

/** The dry-run answer: everything was checked, nothing was changed. */
export function respondDryRun(ctx: ApiContext, extra: Record<string, unknown> = {}): void {
  respond(ctx, 200, { dry_run: true, ...extra });
}
