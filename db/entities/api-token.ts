import { EntitySchema, type Opt } from '@mikro-orm/core';
import { User, type ScopeMode } from './user';

export class ApiToken {
  id!: number;
  user!: User;
  name!: string;
  /** The 8 hex characters shown in the display form `rui_<prefix>_********`. */
  prefix!: string;
  /** sha256 of the whole token; the token itself is never stored. */
  tokenHash!: string;
  scopes: Opt<string[]> = [];
  readOnly: Opt<boolean> = false;
  allowedIps: Opt<string[]> = [];
  allowedOrigins: Opt<string[]> = [];
  rateLimitPerMinute: Opt<number> = 120;
  expiresAt: Date | null = null;
  lastUsedAt: Date | null = null;
  lastUsedIp: string | null = null;
  revokedAt: Date | null = null;
  revokedReason: string | null = null;
  /** The token's own resource scope, within its user's. */
  repoScopeMode: Opt<ScopeMode> = 'all';
  repoScopeIds: Opt<number[]> = [];
  hostScopeMode: Opt<ScopeMode> = 'all';
  hostScopeIds: Opt<number[]> = [];
  /** The token that created this one (null: created outside the API, or that token was deleted). */
  createdByTokenId: number | null = null;
  /**
   * The token whose per-minute budget this one draws from (null: its own). A token created by a
   * rate-limited token shares that token's budget: minting tokens creates no capacity.
   */
  rateBudgetTokenId: number | null = null;
  createdAt: Opt<Date> = new Date();
}

export const ApiTokenSchema = new EntitySchema<ApiToken>({
  class: ApiToken,
  tableName: 'api_tokens',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    user: { kind: 'm:1', entity: () => User, deleteRule: 'cascade' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    tokenHash: { type: 'string', unique: true },
    scopes: { type: 'json' },
    readOnly: { type: 'boolean' },
    allowedIps: { type: 'json' },
    allowedOrigins: { type: 'json' },
    rateLimitPerMinute: { type: 'integer' },
    expiresAt: { type: 'Date', nullable: true },
    lastUsedAt: { type: 'Date', nullable: true },
    lastUsedIp: { type: 'string', nullable: true },
    revokedAt: { type: 'Date', nullable: true },
    revokedReason: { type: 'text', nullable: true },
    repoScopeMode: { type: 'string' },
    repoScopeIds: { type: 'json' },
    hostScopeMode: { type: 'string' },
    hostScopeIds: { type: 'json' },
    createdByTokenId: { type: 'integer', nullable: true },
    rateBudgetTokenId: { type: 'integer', nullable: true },
    createdAt: { type: 'Date' },
  },
});
