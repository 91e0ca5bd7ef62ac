import type { Middleware } from 'koa';
import type OpenAPIBackend from 'openapi-backend';
import type { Request as ContractRequest } from 'openapi-backend';
import type { ApiContext, ApiState, Handler } from '../context';
import { ApiError, invalidFields } from '../errors';

function contractRequest(ctx: ApiContext): ContractRequest {
  return {
    method: ctx.method,
    path: ctx.path,
    query: ctx.querystring,
    headers: ctx.headers as Record<string, string | string[]>,
    body: ctx.request.body,
  };
}

/** Finds the contract operation of a request: 404 when no path matches, 405 when only the method is wrong. */
export function matchOperation(contract: OpenAPIBackend): Middleware<ApiState> {
  return async (ctx, next) => {
    try {
      ctx.state.operation = contract.router.matchOperation(contractRequest(ctx as ApiContext), true);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('405')) {
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
    const result = contract.validateRequest(contractRequest(ctx as ApiContext), operation);
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
