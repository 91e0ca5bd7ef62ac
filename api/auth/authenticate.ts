import type { Middleware } from 'koa';
import { ApiToken } from '../../db/entities';
import { authOf, type ApiContext, type ApiState, type AuthContext, type Services } from '../context';
import { requiredScopes } from '../contract';
import { ApiError } from '../errors';
import { ipAllowed } from './ip-ranges';
import { takeHit } from './rate-limit';
import { intersect } from './resource-scope';
import { userPermissions } from './roles';
import { effectiveScopes, SCOPES } from './scopes';
import { findToken, type TokenRecord, type UserRecord } from './token-lookup';
import { hashToken, isWellFormedToken } from './tokens';

const LAST_USED_EVERY_MS = 60_000;
/** Failed authentications one client address may make per minute before it gets 429s. */
export const FAILED_AUTH_PER_MINUTE = 30;

/** Why the token owner cannot act at `now` (a 403), or null when they can. */
export function userRefusal(user: UserRecord, now: Date): { code: string; message: string } | null {
  if (!user.enabled) return { code: 'user_disabled', message: 'the token owner is disabled' };
  if (user.suspendedUntil && user.suspendedUntil > now) return { code: 'user_suspended', message: 'the token owner is suspended' };
  if (user.accountExpiresAt && user.accountExpiresAt <= now) return { code: 'user_expired', message: 'the token owner account has expired' };
  return null;
}

/** What a token may do and reach: its own scopes and resource scope, within its user's. */
export function authorityOf(token: TokenRecord, user: UserRecord): Pick<AuthContext, 'scopes' | 'resources'> {
  return {
    scopes: effectiveScopes(token.scopes, userPermissions(user), token.readOnly),
    resources: {
      repos: intersect({ mode: user.repoScopeMode, ids: user.repoScopeIds }, { mode: token.repoScopeMode, ids: token.repoScopeIds }),
      hosts: intersect({ mode: user.hostScopeMode, ids: user.hostScopeIds }, { mode: token.hostScopeMode, ids: token.hostScopeIds }),
    },
  };
}

/**
 * Authenticates the bearer token of an operation that declares a bearerAuth scope: the token is
 * known, live and used from an allowed address, and its user may act. Refusals count against
 * the client address's failed-authentication limit.
 */
export function authenticate(services: Pick<Services, 'document'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation;
    const required = operation ? requiredScopes(operation, services.document) : null;
    if (required === null) return next();
    const em = ctx.state.em;

    const refuse = async (code: string, message: string, status = 401): Promise<never> => {
      const hit = await takeHit(em, `auth-failure:${ctx.ip.slice(0, 64)}`, FAILED_AUTH_PER_MINUTE);
      if (!hit.allowed) {
        ctx.set('Retry-After', String(hit.retryAfter));
        throw new ApiError(429, 'rate_limited', 'too many failed authentications from this address; retry later', { retry_after: hit.retryAfter });
      }
      throw new ApiError(status, code, message);
    };

    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('authorization'))?.[1];
    if (!bearer) return refuse('missing_token', 'an Authorization: Bearer token is required');
    const found = isWellFormedToken(bearer) ? await findToken(em, hashToken(bearer)) : null;
    if (!found) return refuse('invalid_token', 'the token is not valid');
    const { token, user } = found;
    ctx.state.caller = { tokenId: token.id, userId: user.id };
    const now = new Date();
    if (token.revokedAt) return refuse('token_revoked', 'the token has been revoked');
    if (token.expiresAt && token.expiresAt <= now) return refuse('token_expired', 'the token has expired');
    if (token.allowedIps.length > 0 && !ipAllowed(ctx.ip, token.allowedIps)) {
      return refuse('ip_not_allowed', `this token cannot be used from ${ctx.ip}`, 403);
    }
    const refusal = userRefusal(user, now);
    if (refusal) return refuse(refusal.code, refusal.message, 403);

    ctx.state.auth = { token, user, ...authorityOf(token, user) };

    // Usage is recorded at most once a minute per token, to keep reads read-only on the hot path.
    if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() > LAST_USED_EVERY_MS) {
      await em.nativeUpdate(ApiToken, { id: token.id }, { lastUsedAt: now, lastUsedIp: ctx.ip });
    }
    await next();
  };
}

/**
 * The token, within its user's current permissions, holds the operation's scope. Runs after the
 * rate limit, so refused requests count against it too.
 */
export function requireScope(services: Pick<Services, 'document'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const required = ctx.state.operation ? requiredScopes(ctx.state.operation, services.document) : null;
    const { token, scopes } = authOf(ctx as ApiContext);
    for (const scope of required ?? []) {
      if (scopes.has(scope)) continue;
      if (token.scopes.includes(scope) && token.readOnly && !SCOPES[scope].readOnly) {
        throw new ApiError(403, 'read_only_token', `a read-only token cannot use ${scope}`, { required_scope: scope });
      }
      if (token.scopes.includes(scope)) {
        throw new ApiError(403, 'permission_revoked', `the token owner no longer holds the permission behind ${scope}`, { required_scope: scope });
      }
      throw new ApiError(403, 'insufficient_scope', `this operation requires the ${scope} scope`, { required_scope: scope });
    }
    await next();
  };
}
