import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { canonicalTimeZone } from '../../common/settings';
import { ApiToken, DomainEvent, User } from '../../db/entities';
import { authorityOf, userRefusal } from '../auth/authenticate';
import { hashPassword } from '../auth/passwords';
import { isRole, ROLES, userPermissions } from '../auth/roles';
import { SCOPES, type Scope } from '../auth/scopes';
import { authOf, type ApiContext, type AuthContext, type RequestBody } from '../context';
import type { components } from '../contract.gen';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondCreated, respondNoContent } from '../envelope';
import { ApiError, conflict, invalidFields, type FieldError } from '../errors';
import { findOr404 } from '../lookup';
import { findPage, pageMeta, pageOf, type Row } from '../pagination';
import { apiTokenView } from '../views';
import { checkReferences } from './api-tokens';
import { assertGrantable, assertManageable } from '../auth/user-guards';

type Schemas = components['schemas'];
/** What a create or an update may set (a create body has these, plus username and password). */
type UserFields = RequestBody<'updateUser'>;

/** The stored fields a request sets, besides the username and the password. */
type Settable = Pick<
  User,
  'role' | 'email' | 'firstName' | 'lastName' | 'phone' | 'jobTitle' | 'preferredLocale' | 'preferredTimezone' | 'preferredStartPage' |
  'permissions' | 'repoScopeMode' | 'repoScopeIds' | 'hostScopeMode' | 'hostScopeIds' | 'enabled' | 'suspendedUntil' | 'suspensionReason' |
  'accountExpiresAt'
>;

const NEW_USER: Settable = {
  role: 'viewer', email: null, firstName: null, lastName: null, phone: null, jobTitle: null, preferredLocale: 'en',
  preferredTimezone: null, preferredStartPage: null, permissions: null, repoScopeMode: 'all', repoScopeIds: [],
  hostScopeMode: 'all', hostScopeIds: [], enabled: true, suspendedUntil: null, suspensionReason: null, accountExpiresAt: null,
};

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export function userView(user: User | Row<User>): Schemas['User'] {
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    first_name: user.firstName,
    last_name: user.lastName,
    email: user.email,
    phone: user.phone,
    job_title: user.jobTitle,
    preferred_locale: user.preferredLocale,
    preferred_timezone: user.preferredTimezone,
    preferred_start_page: user.preferredStartPage,
    permissions: [...userPermissions(user)].sort() as Schemas['Permission'][],
    permission_overrides: user.permissions as Schemas['Permission'][] | null,
    repo_scope_mode: user.repoScopeMode,
    repo_ids: user.repoScopeIds,
    host_scope_mode: user.hostScopeMode,
    host_ids: user.hostScopeIds,
    enabled: user.enabled,
    suspended_until: iso(user.suspendedUntil),
    suspension_reason: user.suspensionReason,
    account_expires_at: iso(user.accountExpiresAt),
    last_login_at: iso(user.lastLoginAt),
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

const given = <T>(value: T | undefined, current: T) => (value === undefined ? current : value);
const dateOf = (value: string | null | undefined, current: Date | null) => (value === undefined ? current : value === null ? null : new Date(value));

/** The user's fields after the request, over their current values (or a new user's defaults). */
function fieldsOf(body: UserFields, current: Settable): Settable {
  const suspendedUntil = dateOf(body.suspended_until, current.suspendedUntil);
  return {
    role: body.role ?? current.role,
    email: given(body.email, current.email),
    firstName: given(body.first_name, current.firstName),
    lastName: given(body.last_name, current.lastName),
    phone: given(body.phone, current.phone),
    jobTitle: given(body.job_title, current.jobTitle),
    preferredLocale: body.preferred_locale ?? current.preferredLocale,
    preferredTimezone: given(body.preferred_timezone, current.preferredTimezone),
    preferredStartPage: given(body.preferred_start_page, current.preferredStartPage),
    permissions: body.permissions === undefined ? current.permissions : body.permissions && [...body.permissions].sort(),
    repoScopeMode: body.repo_scope_mode ?? current.repoScopeMode,
    repoScopeIds: body.repo_ids ?? (body.repo_scope_mode === 'all' ? [] : current.repoScopeIds),
    hostScopeMode: body.host_scope_mode ?? current.hostScopeMode,
    hostScopeIds: body.host_ids ?? (body.host_scope_mode === 'all' ? [] : current.hostScopeIds),
    enabled: body.enabled ?? current.enabled,
    suspendedUntil,
    // Lifting a suspension forgets why it was made.
    suspensionReason: suspendedUntil === null && body.suspension_reason === undefined ? null : given(body.suspension_reason, current.suspensionReason),
    accountExpiresAt: dateOf(body.account_expires_at, current.accountExpiresAt),
  };
}

function checkRole(role: string): void {
  if (!isRole(role)) throw new ApiError(422, 'invalid_role', `there is no role ${role} (roles: ${Object.keys(ROLES).join(', ')})`, { field: 'role' });
}

/** 422 for values that are well-typed but wrong: an unknown role or time zone, a past date, ids without `selected`. */
function checkFields(body: UserFields, next: Settable): void {
  if (body.role !== undefined) checkRole(body.role);
  const problems: FieldError[] = [];
  const now = new Date();
  if (body.preferred_timezone && !canonicalTimeZone(body.preferred_timezone)) problems.push({ field: 'preferred_timezone', message: 'must be an IANA time zone' });
  if (body.suspended_until && new Date(body.suspended_until) <= now) problems.push({ field: 'suspended_until', message: 'must be in the future' });
  if (body.account_expires_at && new Date(body.account_expires_at) <= now) problems.push({ field: 'account_expires_at', message: 'must be in the future' });
  if (next.suspensionReason !== null && next.suspendedUntil === null) problems.push({ field: 'suspension_reason', message: 'only goes with suspended_until' });
  if (next.repoScopeMode === 'all' && next.repoScopeIds.length > 0) problems.push({ field: 'repo_ids', message: 'only goes with repo_scope_mode selected' });
  if (next.hostScopeMode === 'all' && next.hostScopeIds.length > 0) problems.push({ field: 'host_ids', message: 'only goes with host_scope_mode selected' });
  if (problems.length > 0) throw invalidFields(problems);
}

/** The user's fields after `body`, if the caller may make that change (the last-admin rule aside). */
function allowedUpdate(caller: AuthContext, body: UserFields, user: User): Settable {
  if (user.id === caller.user.id && body.role !== undefined && body.role !== user.role) {
    throw new ApiError(403, 'self_role_change_forbidden', 'you cannot change your own role');
  }
  assertManageable(caller, user);
  const next = fieldsOf(body, user);
  checkFields(body, next);
  assertGrantable(caller, next);
  return next;
}

/** An admin who can still administer: enabled, neither suspended nor expired, holding users.manage. */
function isActingAdmin(user: Settable, now: Date): boolean {
  return user.role === 'admin' && user.enabled && !(user.suspendedUntil && user.suspendedUntil > now) &&
    !(user.accountExpiresAt && user.accountExpiresAt <= now) && userPermissions(user).has('users.manage');
}

/** An acting admin who stays one: no account expiry set (a suspension already makes them not acting). */
const isLastingAdmin = (user: Settable, now: Date) => isActingAdmin(user, now) && user.accountExpiresAt === null;

/**
 * 409 `last_admin` when `user` stops being an acting or a lasting admin (`next` null: deleted)
 * and no other lasting admin remains: one whose account will expire cannot be relied on.
 */
async function assertAdminRemains(em: EntityManager, user: User, next: Settable | null): Promise<void> {
  const now = new Date();
  const weakened = (admin: typeof isActingAdmin) => admin(user, now) && !(next && admin(next, now));
  if (!weakened(isActingAdmin) && !weakened(isLastingAdmin)) return;
  const others = await em.find(User, { role: 'admin', enabled: true, accountExpiresAt: null, id: { $ne: user.id } });
  if (!others.some((other) => isLastingAdmin(other, now))) {
    throw conflict('last_admin', `user ${user.id} is the last enabled admin without an expiry; make another admin first`);
  }
}

/** Serialises user changes, so two requests cannot each remove one of the last two admins. */
const lockUsers = (em: EntityManager) => em.execute('lock table users in share row exclusive mode');

/**
 * Takes the users lock, then answers the caller as their user row stands under it: one disabled,
 * suspended, expired or demoted by a change that committed meanwhile acts with what is left.
 */
async function lockedCaller(ctx: ApiContext, em: EntityManager): Promise<AuthContext> {
  await lockUsers(em);
  const caller = authOf(ctx);
  // Refreshed: the identity map may hold the row as read before the lock.
  const user = await em.findOne(User, caller.user.id, { refresh: true });
  if (!user) throw new ApiError(401, 'invalid_token', 'the token is not valid');
  const refusal = userRefusal(user, new Date());
  if (refusal) throw new ApiError(403, refusal.code, refusal.message);
  const fresh = { ...caller, user, ...authorityOf(caller.token, user) };
  if (!fresh.scopes.has('users:write')) {
    throw new ApiError(403, 'permission_revoked', 'the token owner no longer holds the permission behind users:write', { required_scope: 'users:write' });
  }
  return fresh;
}

const userExists = (username: string) => conflict('user_exists', `the username ${username} is taken`, { username });

async function assertUsernameFree(em: EntityManager, username: string): Promise<void> {
  const [row] = await em.execute<{ n: number }[]>('select count(*)::int as n from users where lower(username) = lower(?)', [username]);
  if (row && row.n > 0) throw userExists(username);
}

export async function listUsers(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const { role, enabled } = ctx.state.query;
  if (role !== undefined) checkRole(String(role));
  const where = { ...(role !== undefined ? { role: String(role) } : {}), ...(typeof enabled === 'boolean' ? { enabled } : {}) };
  const [users, total] = await findPage(ctx.state.em, User, page, where);
  respond(ctx, 200, users.map(userView), pageMeta(page, total));
}

export async function getUser(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, userView(await findOr404(ctx.state.em, User, ctx.state.params.id as number, 'user')));
}

export async function createUser(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createUser'>;
  const { em } = ctx.state;
  const next = fieldsOf(body, NEW_USER);
  checkFields(body, next);
  assertGrantable(authOf(ctx), next);
  await checkReferences(ctx, body);
  await assertUsernameFree(em, body.username);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  // Hashed before the users lock is taken: scrypt is slow on purpose.
  const passwordHash = await hashPassword(body.password);
  await em.transactional(async (tx) => {
    assertGrantable(await lockedCaller(ctx, tx), next);
    const user = tx.create(User, { ...next, username: body.username, passwordHash });
    try {
      await tx.flush();
    } catch (error) {
      // The same name, created by a concurrent request since the check.
      if (error instanceof UniqueConstraintViolationException) throw userExists(body.username);
      throw error;
    }
    respondCreated(ctx, `/users/${user.id}`, userView(user));
  });
}

/** The scopes a token keeps once its user lost `lost` permissions. */
const scopesWithout = (scopes: string[], lost: ReadonlySet<string>) =>
  scopes.filter((scope) => !lost.has(SCOPES[scope as Scope]?.permission ?? ''));

export async function updateUser(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as UserFields;
  const id = ctx.state.params.id as number;
  let passwordHash: string | undefined;
  if (body.password !== undefined && !isDryRun(ctx)) {
    // Hashed before the users lock is taken, scrypt being slow on purpose, but only for a caller who may make the change.
    allowedUpdate(authOf(ctx), body, await findOr404(ctx.state.em, User, id, 'user'));
    passwordHash = await hashPassword(body.password);
  }
  await ctx.state.em.transactional(async (em) => {
    const caller = await lockedCaller(ctx, em);
    const user = await findOr404(em, User, id, 'user', { refresh: true });
    const next = allowedUpdate(caller, body, user);
    await checkReferences(ctx, body);
    await assertAdminRemains(em, user, next);
    if (isDryRun(ctx)) return respondDryRun(ctx);

    const kept = userPermissions(next);
    const lost = new Set([...userPermissions(user)].filter((permission) => !kept.has(permission)));
    Object.assign(user, next, passwordHash ? { passwordHash } : {});
    // Stored scopes shrink too, so that granting the permission again does not re-arm old tokens.
    if (lost.size > 0) {
      for (const token of await em.find(ApiToken, { user: user.id })) token.scopes = scopesWithout(token.scopes, lost);
    }
    await em.flush();
    respond(ctx, 200, userView(user));
  });
}

export async function deleteUser(ctx: ApiContext): Promise<void> {
  await ctx.state.em.transactional(async (em) => {
    const caller = await lockedCaller(ctx, em);
    const user = await findOr404(em, User, ctx.state.params.id as number, 'user', { refresh: true });
    if (user.id === caller.user.id) throw conflict('self_delete_forbidden', 'you cannot delete your own user');
    assertManageable(caller, user);
    await assertAdminRemains(em, user, null);
    const now = new Date();
    const live = await em.find(ApiToken, { user: user.id, revokedAt: null, $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }] });
    if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { user: userView(user), api_tokens: live.length } });
    // The tokens go with the user (foreign key cascade); subscribers learn that each live one stopped working.
    for (const token of live) {
      em.create(DomainEvent, {
        type: 'api_token.revoked',
        payload: { ...apiTokenView(token), revoked_at: now.toISOString(), revoked_reason: `user ${user.username} deleted`, by_token_id: caller.token.id },
      });
    }
    await em.nativeDelete(User, { id: user.id });
    respondNoContent(ctx);
  });
}
