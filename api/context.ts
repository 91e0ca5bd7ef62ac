import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { ParameterizedContext } from 'koa';
import type OpenAPIBackend from 'openapi-backend';
import type { Document, Operation } from 'openapi-backend';
import type { TemporalConfig } from '../common/config';
import type { SecretBox } from '../db/secret-box';
import type { ResourceScope } from './auth/resource-scope';
import type { Scope } from './auth/scopes';
import type { TokenRecord, UserRecord } from './auth/token-lookup';
import type { operations } from './contract.gen';

/** Long-lived collaborators of every request, fixed when the app is built. */
export interface Services {
  orm: MikroORM;
  temporal: Client;
  temporalConfig: TemporalConfig;
  secrets: SecretBox;
  contract: OpenAPIBackend;
  document: Document;
}

export interface AuthContext {
  token: TokenRecord;
  user: UserRecord;
  scopes: Set<Scope>;
  /** Repositories and hosts within reach of both the token and its user. */
  resources: ResourceScope;
}

/** Who a request came from, as far as it was established (for the audit log). */
export interface Caller {
  tokenId: number;
  userId: number;
}

export interface ApiState {
  requestId: string;
  /** Set by the contract middleware once the request matched an operation. */
  operation?: Operation;
  /** What the audit log names a request that matched no operation by: a 405's route template, a preflight. */
  routeTemplate?: string;
  /** Path and query parameters, coerced to the contract's types with its defaults applied. */
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  em: EntityManager;
  auth?: AuthContext;
  caller?: Caller;
  /** Whether the request's Origin is in the global CORS allow-list (unset without an Origin). */
  originAllowed?: boolean;
  /** `X-Dry-Run` on a mutation: validate and authorise, change nothing. */
  dryRun?: boolean;
  /** The mutation's idempotency key, when it has one (run triggers derive their workflow id from it). */
  idempotencyKey?: string;
  /** What a retry with the key gets instead of this answer, when this one must not be stored (a secret). */
  replayInstead?: { status: number; body: unknown };
}

export type ApiContext = ParameterizedContext<ApiState, { services: Services }>;

export type Handler = (ctx: ApiContext) => Promise<void>;

export type OperationId = keyof operations;

/** The JSON request body of an operation, as the contract describes it. */
export type RequestBody<Op extends OperationId> = operations[Op] extends {
  requestBody?: { content: { 'application/json': infer Body } };
}
  ? Body
  : never;

/** The authenticated caller; handlers run only after authentication, so it is always there. */
export function authOf(ctx: ApiContext): AuthContext {
  if (!ctx.state.auth) throw new Error('handler reached without authentication');
  return ctx.state.auth;
}
