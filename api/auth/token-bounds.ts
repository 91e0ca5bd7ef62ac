import type { ScopeMode } from '../../db/entities';
import type { AuthContext } from '../context';
import { ApiError } from '../errors';
import { parseIpRange, rangeWithin, type IpRange } from './ip-ranges';
import { intersect, scopeWithin } from './resource-scope';
import { SCOPES, type Scope } from './scopes';

/** What a token may do and from where; the fields a caller sets when creating or changing one. */
export interface TokenBounds {
  scopes: string[];
  readOnly: boolean;
  expiresAt: Date | null;
  allowedIps: string[];
  allowedOrigins: string[];
  repoScopeMode: ScopeMode;
  repoScopeIds: number[];
  hostScopeMode: ScopeMode;
  hostScopeIds: number[];
  /** Requests per minute; 0 = unlimited. */
  rateLimitPerMinute: number;
}

const escalation = (message: string, extra: Record<string, unknown> = {}) => new ApiError(403, 'scope_escalation_forbidden', message, extra);

/** The scopes a token keeps: without the write/run ones when it is read-only. */
export const keptScopes = (scopes: readonly string[], readOnly: boolean) =>
  scopes.filter((scope) => !readOnly || SCOPES[scope as Scope]?.readOnly);

/**
 * Refuses (403 `scope_escalation_forbidden`) a token that could do something its creator cannot:
 * a scope the calling token does not effectively hold, repositories or hosts beyond the caller's
 * reach, a wider address or origin allow-list, a later expiry or a looser rate limit.
 */
export function assertWithinCaller(caller: AuthContext, wanted: TokenBounds): void {
  for (const scope of keptScopes(wanted.scopes, wanted.readOnly)) {
    if (!caller.scopes.has(scope as Scope)) throw escalation(`the calling token does not hold ${scope}`, { scope });
  }
  // Ids the caller cannot see are refused even where the user's own scope would hide them anyway.
  for (const [kind, mode, ids, reach] of [
    ['repositories', wanted.repoScopeMode, wanted.repoScopeIds, caller.resources.repos],
    ['hosts', wanted.hostScopeMode, wanted.hostScopeIds, caller.resources.hosts],
  ] as const) {
    if (mode === 'selected' && reach !== null && ids.some((id) => !reach.has(id))) throw escalation(`the token would name ${kind} the calling token cannot`);
  }
  // The new token's reach is its user's (the caller's user) narrowed by its own setting.
  const user = caller.user;
  const repos = intersect({ mode: user.repoScopeMode, ids: user.repoScopeIds }, { mode: wanted.repoScopeMode, ids: wanted.repoScopeIds });
  if (!scopeWithin(repos, caller.resources.repos)) throw escalation('the token would reach repositories the calling token cannot');
  const hosts = intersect({ mode: user.hostScopeMode, ids: user.hostScopeIds }, { mode: wanted.hostScopeMode, ids: wanted.hostScopeIds });
  if (!scopeWithin(hosts, caller.resources.hosts)) throw escalation('the token would reach hosts the calling token cannot');

  const callerRanges = caller.token.allowedIps.map(parseIpRange).filter((r): r is IpRange => r !== null);
  if (callerRanges.length > 0) {
    const ranges = wanted.allowedIps.map(parseIpRange);
    if (ranges.length === 0 || !ranges.every((range) => range && callerRanges.some((outer) => rangeWithin(range, outer)))) {
      throw escalation('allowed_ips must stay within the calling token\'s allowed_ips');
    }
  }
  const callerOrigins = caller.token.allowedOrigins;
  if (callerOrigins.length > 0 && !callerOrigins.includes('*')) {
    if (wanted.allowedOrigins.length === 0 || !wanted.allowedOrigins.every((origin) => callerOrigins.includes(origin))) {
      throw escalation('allowed_origins must stay within the calling token\'s allowed_origins');
    }
  }
  const callerLimit = caller.token.rateLimitPerMinute;
  if (callerLimit > 0 && (wanted.rateLimitPerMinute === 0 || wanted.rateLimitPerMinute > callerLimit)) {
    throw escalation(`rate_limit_per_minute must stay between 1 and the calling token's ${callerLimit}`);
  }
  const callerExpiry = caller.token.expiresAt;
  if (callerExpiry && (wanted.expiresAt === null || wanted.expiresAt > callerExpiry)) {
    throw escalation(`the token cannot outlive the calling token (which expires at ${callerExpiry.toISOString()})`);
  }
}

