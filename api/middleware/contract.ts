import type { Middleware } from 'koa';
import type OpenAPIBackend from 'openapi-backend';
import type { Request as ContractRequest } from 'openapi-backend';
import type { ApiContext, ApiState, Handler } from '../context';
import { ApiError, invalidFields, type FieldError } from '../errors';

function contractRequest(ctx: ApiContext): ContractRequest {
  return {
    // HEAD is GET without the body (Koa leaves the body out of HEAD responses).
    method: ctx.method === 'HEAD' ? 'GET' : ctx.method,
    path: ctx.path,
    query: ctx.querystring,
    headers: ctx.headers as Record<string, string | string[]>,
    body: ctx.request.body,
  };
}

/** Finds the contract operation of a request: 404 when no path matches, 405 (with Allow) when only the method is wrong. */
export function matchOperation(contract: OpenAPIBackend): Middleware<ApiState> {
  const templates = contract.router.getOperations().map((operation) => ({
    path: operation.path,
    method: operation.method.toUpperCase(),
    pattern: new RegExp(`^${contract.apiRoot}${operation.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
  }));
  const matching = (path: string) => templates.filter((t) => t.pattern.test(path));
  return async (ctx, next) => {
    try {
      ctx.state.operation = contract.router.matchOperation(contractRequest(ctx as ApiContext), true);
    } catch (error) {
      if (error instanceof URIError) throw new ApiError(404, 'not_found', 'the address is not a valid URL');
      if (error instanceof Error && error.message.startsWith('405')) {
        const routes = matching(ctx.path);
        ctx.state.routeTemplate = routes[0]?.path;
        ctx.set('Allow', [...new Set(routes.map((t) => t.method))].join(', '));
        throw new ApiError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}`);
      }
      throw new ApiError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
    }
    await next();
  };
}

/** Validates path, query, headers and body against the operation; 422 with every failing field. */
export function validateRequest(contract: OpenAPIBackend): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation;
    if (!operation) throw new Error('validateRequest needs matchOperation first');
    const unfit = unfitValue(ctx.request.body) ?? unfitValue({ ...ctx.query });
    if (unfit) throw invalidFields([unfit]);
    // The contract cannot say "no body" of an operation that declares none: a body sent anyway is refused rather than ignored.
    if (!operation.requestBody && !isEmpty(ctx.request.body)) throw invalidFields([{ field: 'body', message: 'this operation takes no body (send none, or {})' }]);
    let result: ReturnType<OpenAPIBackend['validateRequest']>;
    try {
      result = contract.validateRequest(contractRequest(ctx as ApiContext), operation);
    } catch (error) {
      if (error instanceof URIError) throw new ApiError(404, 'not_found', 'the address is not a valid URL');
      throw error;
    }
    if (!result.valid) {
      throw invalidFields(
        (result.errors ?? []).map((e) => ({
          field: fieldName(e.instancePath, e.params as Record<string, unknown>),
          message: e.message ?? 'is invalid',
        })),
      );
    }
    ctx.state.params = (result.coerced.params as Record<string, unknown>) ?? {};
    ctx.state.query = (result.coerced.query as Record<string, unknown>) ?? {};
    await next();
  };
}

const isEmpty = (body: unknown) => body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);

/** Control characters no field may hold (tab, line feed and carriage return are allowed). */
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Deeper than any body of the contract: deeper ones only exhaust serialisers. */
const MAX_DEPTH = 32;

function textProblem(text: string): string | null {
  if (FORBIDDEN_CONTROL.test(text)) return 'must not contain control characters';
  // A lone UTF-16 surrogate cannot be stored (Postgres refuses it): it is not text.
  if (LONE_SURROGATE.test(text)) return 'must be well-formed Unicode';
  return null;
}

/**
 * The first field (or key) whose text holds a control character other than tab or a line break
 * or is not well-formed Unicode, or that is nested too deeply; null when there is none. Walks
 * iteratively: a deeply nested body must not exhaust the stack.
 */
function unfitValue(body: unknown): FieldError | null {
  const pending: [unknown, string, number][] = [[body, '', 0]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, path, depth] = next;
    if (depth > MAX_DEPTH) return { field: path, message: `must not be nested more than ${MAX_DEPTH} levels deep` };
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) return { field: path || 'body', message: problem };
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => pending.push([item, `${path}[${index}]`, depth + 1]));
    } else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        const field = path ? `${path}.${key}` : key;
        const problem = textProblem(key);
        if (problem) return { field, message: problem };
        pending.push([item, field, depth + 1]);
      }
    }
  }
  return null;
}

/** `/requestBody/source_paths/0` -> `source_paths[0]`; a missing property names itself. */
function fieldName(instancePath: string, params: Record<string, unknown>): string {
  const parts = instancePath.split('/').filter(Boolean);
  if (['requestBody', 'query', 'path', 'header'].includes(parts[0] ?? '')) parts.shift();
  if (typeof params.missingProperty === 'string') parts.push(params.missingProperty);
  if (typeof params.additionalProperty === 'string') parts.push(params.additionalProperty);
  return parts.reduce((name, part) => (/^\d+$/.test(part) ? `${name}[${part}]` : name ? `${name}.${part}` : part), '') || 'body';
}

/** Calls the handler bound to the operation's operationId; an operation without one answers 501. */
export function dispatch(handlers: Partial<Record<string, Handler>>): Middleware<ApiState> {
  return async (ctx) => {
    const operationId = ctx.state.operation?.operationId ?? '';
    const handler = handlers[operationId];
    if (!handler) throw new ApiError(501, 'not_implemented', `${operationId} is not implemented yet`);
    await handler(ctx as ApiContext);
  };
}
