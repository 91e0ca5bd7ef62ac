/** The 34 API scopes, each with the user permission it needs (null: any user) and whether it only reads. */
export const SCOPES = {
  'me:read': { readOnly: true, permission: null },
  'repos:read': { readOnly: true, permission: 'repos.view' },
  'repos:write': { readOnly: false, permission: 'repos.manage' },
  'repos:check': { readOnly: false, permission: 'repos.manage' },
  'snapshots:read': { readOnly: true, permission: 'repos.view' },
  'snapshots:write': { readOnly: false, permission: 'snapshots.manage' },
  'backup_jobs:read': { readOnly: true, permission: 'backup_jobs.manage' },
  'backup_jobs:write': { readOnly: false, permission: 'backup_jobs.manage' },
  'backup_jobs:run': { readOnly: false, permission: 'backup_jobs.manage' },
  'copy_jobs:read': { readOnly: true, permission: 'copy_jobs.manage' },
  'copy_jobs:write': { readOnly: false, permission: 'copy_jobs.manage' },
  'copy_jobs:run': { readOnly: false, permission: 'copy_jobs.manage' },
  'restores:read': { readOnly: true, permission: 'restore.view' },
  'restores:write': { readOnly: false, permission: 'restore.run' },
  'hosts:read': { readOnly: true, permission: 'hosts.manage' },
  'hosts:write': { readOnly: false, permission: 'hosts.manage' },
  'ssh_keys:read': { readOnly: true, permission: 'sshkeys.manage' },
  'ssh_keys:write': { readOnly: false, permission: 'sshkeys.manage' },
  'scheduler:read': { readOnly: true, permission: 'scheduler.manage' },
  'scheduler:write': { readOnly: false, permission: 'scheduler.manage' },
  'notifications:read': { readOnly: true, permission: null },
  'notifications:write': { readOnly: false, permission: null },
  'stats:read': { readOnly: true, permission: 'stats.view' },
  'logs:read': { readOnly: true, permission: 'logs.view' },
  'jobs_queue:read': { readOnly: true, permission: 'performance.view' },
  'jobs_queue:write': { readOnly: false, permission: 'settings.manage' },
  'users:read': { readOnly: true, permission: 'users.manage' },
  'users:write': { readOnly: false, permission: 'users.manage' },
  'api_tokens:read': { readOnly: true, permission: null },
  'api_tokens:write': { readOnly: false, permission: null },
  'webhooks:read': { readOnly: true, permission: 'settings.manage' },
  'webhooks:write': { readOnly: false, permission: 'settings.manage' },
  'settings:read': { readOnly: true, permission: 'settings.manage' },
  'settings:write': { readOnly: false, permission: 'settings.manage' },
} as const satisfies Record<string, { readOnly: boolean; permission: string | null }>;

export type Scope = keyof typeof SCOPES;

export const ALL_SCOPES = Object.keys(SCOPES) as Scope[];

export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value);
}

/** The scopes a holder of `permissions` may use; a token's effective scopes are its own scopes within these. */
export function effectiveScopes(tokenScopes: readonly string[], permissions: ReadonlySet<string>, readOnly: boolean): Set<Scope> {
  const effective = new Set<Scope>();
  for (const scope of tokenScopes) {
    if (!isScope(scope)) continue;
    const { readOnly: scopeReadOnly, permission } = SCOPES[scope];
    if (readOnly && !scopeReadOnly) continue;
    if (permission !== null && !permissions.has(permission)) continue;
    effective.add(scope);
  }
  return effective;
}
