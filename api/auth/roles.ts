/** Roles and the permissions each grants by default (per-user overrides replace the set). */
const VIEWER = ['repos.view', 'logs.view', 'stats.view'];
const OPERATOR = [...VIEWER, 'backup_jobs.manage', 'copy_jobs.manage'];
const RESTORE_OPERATOR = [...OPERATOR, 'restore.view', 'restore.run'];
export const ALL_PERMISSIONS = [
  'repos.view', 'repos.view_sensitive_files', 'repos.manage', 'backup_jobs.manage', 'copy_jobs.manage',
  'restore.view', 'restore.run', 'hosts.manage', 'sshkeys.manage', 'ssh_host_key.approve', 'scripts.manage',
  'scheduler.manage', 'settings.manage', 'themes.manage', 'users.manage', 'logs.view', 'stats.view',
  'performance.view', 'snapshots.manage',
];

export const ROLES = {
  viewer: { level: 10, permissions: VIEWER },
  operator: { level: 20, permissions: OPERATOR },
  'restore-operator': { level: 30, permissions: RESTORE_OPERATOR },
  admin: { level: 40, permissions: ALL_PERMISSIONS },
} as const;

export type Role = keyof typeof ROLES;

export function isRole(value: string): value is Role {
  return Object.hasOwn(ROLES, value);
}

export function userPermissions(user: { role: string; permissions: string[] | null }): Set<string> {
  if (user.permissions) return new Set(user.permissions);
  return new Set(isRole(user.role) ? ROLES[user.role].permissions : []);
}
