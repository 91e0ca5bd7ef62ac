import type { Middleware, ParameterizedContext } from 'koa';
import { log } from '../../common/log';
import { loggedError } from './errors';
import type { ApiState, Services } from '../context';

const clip = (text: string | undefined, length: number) => (text ? text.slice(0, length) : null);

/** What a request is named by in logs and metrics: its route template, never its raw path (which may hold anything, a token included). */
export function routeOf(ctx: ParameterizedContext<ApiState>): string {
  const matched = (ctx as { _matchedRoute?: string })._matchedRoute; // a Swagger UI asset route
  return ctx.state.operation?.path ?? ctx.state.routeTemplate ?? matched ?? '(unknown route)';
}

/**
 * Records every request in `api_token_logs` before its response leaves: token and user (when
 * known), method, route template, status, error code, address, user agent and latency.
 */
export function auditLog(services: Pick<Services, 'orm'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const body = ctx.body as { error?: { code?: unknown } | null } | null;
      const error = typeof body?.error?.code === 'string' ? body.error.code : null;
      const endpoint = routeOf(ctx);
      try {
        await services.orm.em.getConnection().execute(
          `insert into api_token_logs (token_id, user_id, method, endpoint, status, ip, user_agent, latency_ms, error)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            ctx.state.caller?.tokenId ?? null, ctx.state.caller?.userId ?? null, ctx.method.slice(0, 10), clip(endpoint, 255), ctx.status,
            clip(ctx.ip, 64), clip(ctx.get('user-agent'), 255), Number((process.hrtime.bigint() - started) / 1_000_000n), clip(error ?? undefined, 64),
          ],
        );
      } catch (failure) {
        // The response still goes out; the operator sees the lost entry in the log.
        log.error({ err: loggedError(failure), method: ctx.method, route: endpoint }, 'audit entry not written');
      }
    }
  };
}
