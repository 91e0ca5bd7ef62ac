import type { Middleware } from 'koa';
import type { ApiState, Services } from '../context';

const clip = (text: string | undefined, length: number) => (text ? text.slice(0, length) : null);

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
      // Never the raw path of an unknown route: it may hold anything, a token included.
      const matched = (ctx as { _matchedRoute?: string })._matchedRoute; // a Swagger UI asset route
      const endpoint = ctx.state.operation?.path ?? ctx.state.routeTemplate ?? matched ?? '(unknown route)';
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
        console.error(`request ${ctx.state.requestId} ${ctx.method} ${ctx.path}: audit entry not written:`, failure);
      }
    }
  };
}
