import type { Middleware } from 'koa';
import { ApiToken } from '../../db/entities';
import type { ApiState, Services } from '../context';
import { requiredScopes } from '../contract';
import { ApiError } from '../errors';
import { userPermissions } from './roles';
import { effectiveScopes, SCOPES } from './scopes';
import { findToken } from './token-lookup';
import { hashToken, isWellFormedToken } from './tokens';

const LAST_USED_EVERY_MS = 60_000;

/**
 * Authenticates the bearer token of an operation that declares a bearerAuth scope, and checks
 * that the token, within its user's current permissions, holds that scope.
 */
export function authenticate(services: Pick<Services, 'document'>): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation;
    const required = operation ? requiredScopes(operation, services.document) : null;
    if (required === null) return next();

    const header = ctx.get('authorization');
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (!bearer) throw new ApiError(401, 'missing_token', 'an Authorization: Bearer token is required');
    if (!isWellFormedToken(bearer)) throw new ApiError(401, 'invalid_token', 'the token is not valid');

    const em = ctx.state.em;
    const found = await findToken(em, hashToken(bearer));
    if (!found) throw new ApiError(401, 'invalid_token', 'the token is not valid');
    const { token, user } = found;
    const now = new Date();
    if (token.revokedAt) throw new ApiError(401, 'token_revoked', 'the token has been revoked');
    if (token.expiresAt && token.expiresAt <= now) throw new ApiError(401, 'token_expired', 'the token has expired');

    if (!user.enabled) throw new ApiError(403, 'user_disabled', 'the token owner is disabled');
    if (user.suspendedUntil && user.suspendedUntil > now) throw new ApiError(403, 'user_suspended', 'the token owner is suspended');
    if (user.accountExpiresAt && user.accountExpiresAt <= now) throw new ApiError(403, 'user_expired', 'the token owner account has expired');

    const scopes = effectiveScopes(token.scopes, userPermissions(user), token.readOnly);
    for (const scope of required) {
      if (scopes.has(scope)) continue;
      if (token.scopes.includes(scope) && token.readOnly && !SCOPES[scope].readOnly) {
        throw new ApiError(403, 'read_only_token', `a read-only token cannot use ${scope}`, { required_scope: scope });
      }
      if (token.scopes.includes(scope)) {
        throw new ApiError(403, 'permission_revoked', `the token owner no longer holds the permission behind ${scope}`, { required_scope: scope });
      }
      throw new ApiError(403, 'insufficient_scope', `this operation requires the ${scope} scope`, { required_scope: scope });
    }
    ctx.state.auth = { token, user, scopes };

    // Usage is recorded at most once a minute per token, to keep reads read-only on the hot path.
    if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() > LAST_USED_EVERY_MS) {
      await em.nativeUpdate(ApiToken, { id: token.id }, { lastUsedAt: now, lastUsedIp: ctx.ip });
    }
    await next();
  };
}
