import type { Middleware } from 'koa';
import { isMutation } from '../http';
import { readSettings } from '../../common/settings';
import { authOf, type ApiContext, type ApiState } from '../context';
import { ApiError, invalidField } from '../errors';

/** A reservation older than this belongs to a request that died; a retry may take it over. */
const ABANDONED_AFTER_MINUTES = 15;

/** JSON with object keys sorted, so that key order does not change a request's fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function keyOf(ctx: ApiContext): string | null {
  const plain = ctx.get('idempotency-key');
  const prefixed = ctx.get('x-idempotency-key');
  if (plain && prefixed && plain !== prefixed) throw invalidField('Idempotency-Key', 'Idempotency-Key and X-Idempotency-Key differ');
  return plain || prefixed || null;
}

interface Stored {
  id: string;
  fingerprint: string;
  response_status: number | null;
  response_body: string | null;
  response_location: string | null;
}

/**
 * `Idempotency-Key` on a mutation, per token: the first request reserves the key and its
 * fingerprint (method, path, query and body); a successful answer is stored and replayed, byte
 * for byte, to a retry of the same request. A different request with the key is 422, a retry
 * while the first is running is 409. Failed requests release the key, so they can be retried.
 * Runs after authentication and the scope checks, so a replay is only shown to a caller who may
 * still make the request.
 */
export function idempotency(): Middleware<ApiState> {
  return async (ctx, next) => {
    const key = isMutation(ctx.method) && !ctx.state.dryRun ? keyOf(ctx as ApiContext) : null;
    if (!key) return next();
    const { token } = authOf(ctx as ApiContext);
    const connection = ctx.state.em.getConnection();
    // Keyed: a body may hold a password, which a plain hash would let a database reader guess.
    const fingerprint = (ctx as ApiContext).services.secrets.digest(canonical([ctx.method, ctx.path, ctx.querystring, ctx.request.body ?? null]), 'idempotency.fingerprint');
    const { api_idempotency_retention_hours: hours } = await readSettings(ctx.state.em, ['api_idempotency_retention_hours']);

    await connection.execute(
      `delete from api_idempotency_keys where token_id = ? and idempotency_key = ? and created_at < now() - make_interval(hours => ?)`,
      [token.id, key, hours],
    );
    const [reserved] = await connection.execute<{ id: string }[]>(
      `insert into api_idempotency_keys (token_id, idempotency_key, fingerprint, method, endpoint) values (?, ?, ?, ?, ?)
       on conflict (token_id, idempotency_key) do nothing returning id`,
      [token.id, key, fingerprint, ctx.method, ctx.path.slice(0, 2048)],
    );
    let id = reserved?.id;
    if (!id) {
      const [stored] = await connection.execute<Stored[]>(
        'select id, fingerprint, response_status, response_body, response_location from api_idempotency_keys where token_id = ? and idempotency_key = ?',
        [token.id, key],
      );
      if (!stored) throw new ApiError(409, 'idempotency_in_progress', 'a request with this Idempotency-Key was just released; retry');
      if (stored.fingerprint !== fingerprint) {
        throw new ApiError(422, 'idempotency_key_mismatch', 'this Idempotency-Key was used for a different request', { field: 'Idempotency-Key' });
      }
      if (stored.response_status !== null) return replay(ctx as ApiContext, stored);
      const [takenOver] = await connection.execute<{ id: string }[]>(
        `update api_idempotency_keys set created_at = now() where id = ? and completed_at is null
           and created_at < now() - make_interval(mins => ?) returning id`,
        [stored.id, ABANDONED_AFTER_MINUTES],
      );
      if (!takenOver) throw new ApiError(409, 'idempotency_in_progress', 'a request with this Idempotency-Key is still being processed');
      id = takenOver.id;
    }

    ctx.state.idempotencyKey = key;
    try {
      await next();
    } catch (error) {
      await connection.execute('delete from api_idempotency_keys where id = ?', [id]);
      throw error;
    }
    if (ctx.status >= 200 && ctx.status < 300) {
      const { status, body } = ctx.state.replayInstead ?? { status: ctx.status, body: ctx.body };
      await connection.execute(
        'update api_idempotency_keys set response_status = ?, response_body = ?, response_location = ?, completed_at = now() where id = ?',
        [status, body === null || body === undefined ? null : JSON.stringify(body), ctx.response.get('Location') || null, id],
      );
    } else {
      await connection.execute('delete from api_idempotency_keys where id = ?', [id]);
    }
  };
}

function replay(ctx: ApiContext, stored: Stored): void {
  ctx.set('Idempotent-Replay', 'true');
  if (stored.response_location) ctx.set('Location', stored.response_location);
  ctx.status = stored.response_status ?? 200;
  if (stored.response_body === null) {
    ctx.body = null;
    return;
  }
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = stored.response_body;
}
