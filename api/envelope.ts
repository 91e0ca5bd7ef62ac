import type { Context } from 'koa';

export interface Envelope<T> {
  data: T;
  meta: Record<string, unknown> | null;
  error: null;
}

/** Writes a success envelope `{data, meta, error: null}`. */
export function respond<T>(ctx: Context, status: number, data: T, meta: Record<string, unknown> | null = null): void {
  ctx.status = status;
  ctx.body = { data, meta, error: null } satisfies Envelope<T>;
}

/** 201 with the new resource and its address (relative to /api/v1) in Location. */
export function respondCreated<T>(ctx: Context, path: string, data: T): void {
  ctx.set('Location', `/api/v1${path}`);
  respond(ctx, 201, data);
}

export function respondNoContent(ctx: Context): void {
  ctx.status = 204;
  ctx.body = null;
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}) {
  return { data: null, meta: null, error: { code, message, ...extra } };
}
