import type { Middleware } from 'koa';
import { koaBody } from 'koa-body';
import { ApiError } from '../errors';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** Parses JSON bodies only; malformed JSON, or a body that is not JSON, is a 400 `invalid_json`. */
export function jsonBody(): Middleware {
  const parse = koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: '1mb',
    text: false,
    urlencoded: false,
    multipart: false,
    onError: (error) => {
      throw new ApiError(400, 'invalid_json', `the request body is not valid JSON: ${error.message}`);
    },
  });
  return async (ctx, next) => {
    const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
    if (WITH_BODY.has(ctx.method) && hasBody && !ctx.is('application/json')) {
      throw new ApiError(400, 'invalid_json', 'the request body must be JSON, sent with Content-Type: application/json');
    }
    await parse(ctx, next);
  };
}
