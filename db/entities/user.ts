import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';

export type ScopeMode = 'all' | 'selected';

export class User {
  [OptionalProps]?: 'permissions';
  id!: number;
  username!: string;
  passwordHash: string | null = null;
  role!: string;
  email: string | null = null;
  firstName: string | null = null;
  lastName: string | null = null;
  phone: string | null = null;
  jobTitle: string | null = null;
  preferredLocale: Opt<string> = 'en';
  preferredTimezone: string | null = null;
  preferredStartPage: string | null = null;
  /** Per-user permission overrides; null means the role's defaults. */
  permissions: string[] | null = null;
  repoScopeMode: Opt<ScopeMode> = 'all';
  repoScopeIds: Opt<number[]> = [];
  hostScopeMode: Opt<ScopeMode> = 'all';
  hostScopeIds: Opt<number[]> = [];
  enabled: Opt<boolean> = true;
  suspendedUntil: Date | null = null;
  suspensionReason: string | null = null;
  accountExpiresAt: Date | null = null;
  lastLoginAt: Date | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const UserSchema = new EntitySchema<User>({
  class: User,
  tableName: 'users',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    username: { type: 'string', unique: true },
    passwordHash: { type: 'text', nullable: true },
    role: { type: 'string' },
    email: { type: 'string', nullable: true },
    firstName: { type: 'string', nullable: true },
    lastName: { type: 'string', nullable: true },
    phone: { type: 'string', nullable: true },
    jobTitle: { type: 'string', nullable: true },
    preferredLocale: { type: 'string' },
    preferredTimezone: { type: 'string', nullable: true },
    preferredStartPage: { type: 'string', nullable: true },
    permissions: { type: 'json', nullable: true },
    repoScopeMode: { type: 'string' },
    repoScopeIds: { type: 'json' },
    hostScopeMode: { type: 'string' },
    hostScopeIds: { type: 'json' },
    enabled: { type: 'boolean' },
    suspendedUntil: { type: 'Date', nullable: true },
    suspensionReason: { type: 'string', nullable: true },
    accountExpiresAt: { type: 'Date', nullable: true },
    lastLoginAt: { type: 'Date', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
