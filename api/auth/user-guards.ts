import type { User } from '../../db/entities';
import type { AuthContext } from '../context';
import { ApiError } from '../errors';
import { intersect, scopeWithin } from './resource-scope';
import { isRole, ROLES, userPermissions } from './roles';

/** What a user may do and reach: what a caller must hold to make or manage them. */
export type UserReach = Pick<User, 'role' | 'permissions' | 'repoScopeMode' | 'repoScopeIds' | 'hostScopeMode' | 'hostScopeIds'>;

const levelOf = (role: string) => (isRole(role) ? ROLES[role].level : 0);
const escalation = (message: string, extra: Record<string, unknown> = {}) => new ApiError(403, 'role_escalation_forbidden', message, extra);

/** 403 `scope_escalation_forbidden` when `user` reaches repositories or hosts that the calling token cannot. */
function assertWithinReach(caller: AuthContext, user: UserReach, who: string): void {
  for (const [kind, mode, ids, reach] of [
    ['repositories', user.repoScopeMode, user.repoScopeIds, caller.resources.repos],
    ['hosts', user.hostScopeMode, user.hostScopeIds, caller.resources.hosts],
  ] as const) {
    if (!scopeWithin(intersect({ mode, ids }), reach)) throw new ApiError(403, 'scope_escalation_forbidden', `${who} ${kind} the calling token cannot`);
  }
}

/**
 * A caller manages only users who can do no more than they can (else a password reset, or a token
 * made for them, would take over a wider account): a role at or below theirs and no permission
 * they lack (403 `role_escalation_forbidden`), no repository or host beyond their reach (403
 * `scope_escalation_forbidden`).
 */
export function assertManageable(caller: AuthContext, user: UserReach & Pick<User, 'id'>): void {
  if (levelOf(user.role) > levelOf(caller.user.role)) throw escalation(`user ${user.id} has a role (${user.role}) above yours (${caller.user.role})`);
  const held = userPermissions(caller.user);
  const beyond = [...userPermissions(user)].find((permission) => !held.has(permission));
  if (beyond) throw escalation(`user ${user.id} holds ${beyond}, which you do not`, { permission: beyond });
  assertWithinReach(caller, user, `user ${user.id} reaches`);
}

/**
 * Refuses a user who could do more than their maker: a role above the caller's level, a
 * permission the caller does not hold (403 `role_escalation_forbidden`), or repositories or hosts
 * beyond the calling token's reach (403 `scope_escalation_forbidden`).
 */
export function assertGrantable(caller: AuthContext, next: UserReach): void {
  if (levelOf(next.role) > levelOf(caller.user.role)) throw escalation(`the role ${next.role} is above yours (${caller.user.role})`, { role: next.role });
  const held = userPermissions(caller.user);
  for (const permission of userPermissions(next)) {
    if (!held.has(permission)) throw escalation(`you cannot grant ${permission}, which you do not hold`, { permission });
  }
  assertWithinReach(caller, next, 'the user would reach');
}
