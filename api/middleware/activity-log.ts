import type { Middleware } from 'koa';
import { log } from '../../common/log';
import { ActivityLog, type ActivitySeverity } from '../../db/entities';
import { authOf, type ApiContext, type ApiState } from '../context';
import { isMutation } from '../http';
import { routeOf } from './audit-log';
import { loggedError } from './errors';

/** Changes to these decide who may do what: worth a second look, as deletions are. */
const SENSITIVE_RESOURCES = new Set(['setting', 'user', 'api_token']);

const clip = (text: string | undefined, length: number) => (text ? text.slice(0, length) : null);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `createBackupJob` -> `backup_job.create`: the resource, then the verb the operationId starts with. */
export function activityAction(operationId: string): string {
  const [verb = '', ...resource] = operationId.split(/(?=[A-Z])/).map((word) => word.toLowerCase());
  return `${resource.join('_')}.${verb}`;
}

export function activitySeverity(action: string): ActivitySeverity {
  const [resource = '', verb = ''] = action.split('.');
  return verb.startsWith('delete') || SENSITIVE_RESOURCES.has(resource) ? 'warning' : 'info';
}

/**
 * Ids and names only: a request body may hold passwords, keys or setting values, so of it only
 * integer `*_id` fields are kept; of the answer, the name and id of what it returned.
 */
function detailsOf(ctx: ApiContext): Record<string, unknown> | null {
  const details: Record<string, unknown> = { ...ctx.state.params };
  const body: unknown = ctx.request.body;
  if (isRecord(body)) {
    for (const [field, value] of Object.entries(body)) if (field.endsWith('_id') && Number.isInteger(value)) details[field] = value;
  }
  const data = (ctx.body as { data?: unknown } | null)?.data;
  if (isRecord(data)) {
    if (typeof data.name === 'string') details.name = data.name;
    if ((typeof data.id === 'number' || typeof data.id === 'string') && data.id !== details.id) details.result_id = data.id;
  }
  return Object.keys(details).length > 0 ? details : null;
}

/**
 * One activity entry per mutation that changed something: it runs inside the idempotency and
 * dry-run checks, so a replay never reaches it, and it writes only after a 2xx answer of a real
 * run. The action is named after the operation (or its `x-activity-action`).
 */
export function activityLog(): Middleware<ApiState> {
  return async (ctx, next) => {
    await next();
    const operation = ctx.state.operation as (ApiState['operation'] & { 'x-activity-action'?: string }) | undefined;
    if (!operation || !isMutation(ctx.method) || ctx.state.dryRun || ctx.status < 200 || ctx.status >= 300) return;
    const { user, token } = authOf(ctx as ApiContext);
    const action = operation['x-activity-action'] ?? activityAction(operation.operationId ?? '');
    try {
      await ctx.state.em.insert(ActivityLog, {
        userId: user.id,
        tokenId: token.id,
        username: user.username,
        action,
        severity: activitySeverity(action),
        details: detailsOf(ctx as ApiContext),
        ip: clip(ctx.ip, 64),
        userAgent: clip(ctx.get('user-agent'), 255),
        requestId: ctx.state.requestId,
      });
    } catch (failure) {
      // The change is made: failing its request now would only invite a retry of it.
      log.error({ err: loggedError(failure), method: ctx.method, route: routeOf(ctx) }, 'activity entry not written');
    }
  };
}
