import type { Middleware } from 'koa';
import { koaBody } from 'koa-body';
import { ApiError } from '../errors';

/** Parses JSON bodies only; malformed JSON is a 400 `invalid_json`. */
export function jsonBody(): Middleware {
  return koaBody({
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
}
