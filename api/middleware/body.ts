import type { Middleware } from 'koa';
import { koaBody } from 'koa-body';
import { ApiError } from '../errors';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** What was wrong with a body, in words that reveal nothing of the parser's internals. */
function bodyProblem(error: Error & { type?: string }): string {
  if (error instanceof SyntaxError) return `the request body is not valid JSON: ${error.message}`;
  if (error.type === 'entity.too.large') return 'the request body is larger than 1 MB';
  return 'the request body could not be read (unsupported or corrupt Content-Encoding?)';
}

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
      throw new ApiError(400, 'invalid_json', bodyProblem(error as Error & { type?: string }));
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
