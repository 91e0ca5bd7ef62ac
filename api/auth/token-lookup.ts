import type { EntityManager } from '@mikro-orm/postgresql';
import type { ApiToken, User } from '../../db/entities';

export type TokenRecord = Pick<
  ApiToken,
  'id' | 'name' | 'scopes' | 'readOnly' | 'rateLimitPerMinute' | 'expiresAt' | 'revokedAt' | 'lastUsedAt' | 'allowedIps' |
  'allowedOrigins' | 'repoScopeMode' | 'repoScopeIds' | 'hostScopeMode' | 'hostScopeIds' | 'rateBudgetTokenId'
>;
export type UserRecord = Pick<
  User,
  'id' | 'username' | 'role' | 'email' | 'firstName' | 'lastName' | 'permissions' | 'repoScopeMode' | 'repoScopeIds' |
  'hostScopeMode' | 'hostScopeIds' | 'enabled' | 'suspendedUntil' | 'accountExpiresAt'
>;

// MikroORM's driver hands timestamps back as strings.
type Timestamp = string | Date | null;
const toDate = (value: Timestamp) => (value === null ? null : new Date(value));

interface Row {
  token_id: number; token_name: string; scopes: string[]; read_only: boolean; rate_limit_per_minute: number;
  expires_at: Timestamp; revoked_at: Timestamp; last_used_at: Timestamp; allowed_ips: string[]; allowed_origins: string[];
  token_repo_scope_mode: TokenRecord['repoScopeMode']; token_repo_scope_ids: number[];
  token_host_scope_mode: TokenRecord['hostScopeMode']; token_host_scope_ids: number[]; rate_budget_token_id: number | null;
  user_id: number; username: string; role: string; email: string | null; first_name: string | null; last_name: string | null;
  permissions: string[] | null; repo_scope_mode: UserRecord['repoScopeMode']; repo_scope_ids: number[];
  host_scope_mode: UserRecord['hostScopeMode']; host_scope_ids: number[]; enabled: boolean;
  suspended_until: Timestamp; account_expires_at: Timestamp;
}

/**
 * The token with this hash and its user, in one query and without entity hydration: this runs
 * on every authenticated request.
 */
export async function findToken(em: EntityManager, tokenHash: string): Promise<{ token: TokenRecord; user: UserRecord } | null> {
  const [row] = await em.getConnection().execute<Row[]>(
    `select t.id as token_id, t.name as token_name, t.scopes, t.read_only, t.rate_limit_per_minute, t.expires_at,
            t.revoked_at, t.last_used_at, t.allowed_ips, t.allowed_origins, t.repo_scope_mode as token_repo_scope_mode,
            t.repo_scope_ids as token_repo_scope_ids, t.host_scope_mode as token_host_scope_mode,
            t.host_scope_ids as token_host_scope_ids, t.rate_budget_token_id, u.id as user_id, u.username, u.role, u.email, u.first_name, u.last_name,
            u.permissions, u.repo_scope_mode, u.repo_scope_ids, u.host_scope_mode, u.host_scope_ids, u.enabled,
            u.suspended_until, u.account_expires_at
       from api_tokens t join users u on u.id = t.user_id
      where t.token_hash = ?`,
    [tokenHash],
  );
  if (!row) return null;
  return {
    token: {
      id: row.token_id,
      name: row.token_name,
      scopes: row.scopes,
      readOnly: row.read_only,
      rateLimitPerMinute: row.rate_limit_per_minute,
      expiresAt: toDate(row.expires_at),
      revokedAt: toDate(row.revoked_at),
      lastUsedAt: toDate(row.last_used_at),
      allowedIps: row.allowed_ips,
      allowedOrigins: row.allowed_origins,
      repoScopeMode: row.token_repo_scope_mode,
      repoScopeIds: row.token_repo_scope_ids,
      hostScopeMode: row.token_host_scope_mode,
      hostScopeIds: row.token_host_scope_ids,
      rateBudgetTokenId: row.rate_budget_token_id,
    },
    user: {
      id: row.user_id,
      username: row.username,
      role: row.role,
      email: row.email,
      firstName: row.first_name,
      lastName: row.last_name,
      permissions: row.permissions,
      repoScopeMode: row.repo_scope_mode,
      repoScopeIds: row.repo_scope_ids,
      hostScopeMode: row.host_scope_mode,
      hostScopeIds: row.host_scope_ids,
      enabled: row.enabled,
      suspendedUntil: toDate(row.suspended_until),
      accountExpiresAt: toDate(row.account_expires_at),
    },
  };
}
