import { ApiToken, DomainEvent, Host, Repo, User } from '../../db/entities';
import { readSettings } from '../../common/settings';
import { parseIpRange } from '../auth/ip-ranges';
import { assertWithinCaller, keptScopes, type TokenBounds } from '../auth/token-bounds';
import { generateToken } from '../auth/tokens';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { errorBody, respond, respondCreated, respondNoContent } from '../envelope';
import { ApiError, conflict, invalidFields, notFound, type FieldError } from '../errors';
import { pageMeta, pageOf } from '../pagination';
import { apiTokenView } from '../views';
import { assertManageable } from '../auth/user-guards';

const DAY_MS = 86_400_000;

/** One of the caller's own tokens; another user's token is 404, so its existence is not revealed. */
async function findOwnToken(ctx: ApiContext): Promise<ApiToken> {
  const id = ctx.state.params.id as number;
  const token = await ctx.state.em.findOne(ApiToken, { id, user: authOf(ctx).user.id });
  if (!token) throw notFound(`API token ${id}`);
  return token;
}

/**
 * A token the caller may change, revoke or delete: itself, or one no wider than itself (a narrow
 * CI token must not be able to revoke or throttle its user's administration token).
 */
async function findManagedToken(ctx: ApiContext): Promise<ApiToken> {
  const token = await findOwnToken(ctx);
  const caller = authOf(ctx);
  if (token.id !== caller.token.id) assertWithinCaller(caller, token);
  return token;
}

type TokenFields = RequestBody<'updateApiToken'>;

/** The bounds a request asks for, over the token's current ones (or a new token's defaults). */
function boundsOf(body: TokenFields, current: TokenBounds): TokenBounds {
  return {
    scopes: body.scopes ?? current.scopes,
    readOnly: body.read_only ?? current.readOnly,
    expiresAt: body.expires_at === undefined ? current.expiresAt : body.expires_at === null ? null : new Date(body.expires_at),
    allowedIps: body.allowed_ips ?? current.allowedIps,
    allowedOrigins: body.allowed_origins ?? current.allowedOrigins,
    repoScopeMode: body.repo_scope_mode ?? current.repoScopeMode,
    repoScopeIds: body.repo_ids ?? (body.repo_scope_mode === 'all' ? [] : current.repoScopeIds),
    hostScopeMode: body.host_scope_mode ?? current.hostScopeMode,
    hostScopeIds: body.host_ids ?? (body.host_scope_mode === 'all' ? [] : current.hostScopeIds),
    rateLimitPerMinute: body.rate_limit_per_minute ?? current.rateLimitPerMinute,
  };
}

/** 422 for values that are well-typed but wrong: unknown ranges, a past expiry, ids without `selected`. */
function checkBounds(body: TokenFields, bounds: TokenBounds): void {
  const problems: FieldError[] = [];
  (body.allowed_ips ?? []).forEach((ip, index) => {
    if (!parseIpRange(ip)) problems.push({ field: `allowed_ips[${index}]`, message: 'must be an IPv4/IPv6 address or CIDR range' });
  });
  if (body.expires_at && new Date(body.expires_at) <= new Date()) problems.push({ field: 'expires_at', message: 'must be in the future' });
  if (keptScopes(bounds.scopes, bounds.readOnly).length === 0) problems.push({ field: 'scopes', message: 'a read-only token needs at least one read scope' });
  if (bounds.repoScopeMode === 'all' && bounds.repoScopeIds.length > 0) problems.push({ field: 'repo_ids', message: 'only goes with repo_scope_mode selected' });
  if (bounds.hostScopeMode === 'all' && bounds.hostScopeIds.length > 0) problems.push({ field: 'host_ids', message: 'only goes with host_scope_mode selected' });
  if (problems.length > 0) throw invalidFields(problems);
}

/** 422 naming each repository or host id of the request that does not exist (checked once the caller may name them). */
export async function checkReferences(ctx: ApiContext, body: TokenFields): Promise<void> {
  const problems: FieldError[] = [];
  for (const [field, ids, entity] of [['repo_ids', body.repo_ids, Repo], ['host_ids', body.host_ids, Host]] as const) {
    if (!ids || ids.length === 0) continue;
    const found = new Set((await ctx.state.em.find(entity, { id: { $in: ids } }, { fields: ['id'] })).map((row) => row.id));
    ids.forEach((id, index) => {
      if (!found.has(id)) problems.push({ field: `${field}[${index}]`, message: `${field === 'repo_ids' ? 'repository' : 'host'} ${id} does not exist` });
    });
  }
  if (problems.length > 0) throw invalidFields(problems);
}

export async function listApiTokens(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const { em } = ctx.state;
  const [rows, total] = await Promise.all([
    em.find(ApiToken, { user: authOf(ctx).user.id }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.perPage, offset: page.offset }),
    em.count(ApiToken, { user: authOf(ctx).user.id }),
  ]);
  respond(ctx, 200, rows.map(apiTokenView), pageMeta(page, total));
}

export async function getApiToken(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, apiTokenView(await findOwnToken(ctx)));
}

/** The user a new token is for: the caller, or a user the caller may manage (with `users:write`). */
async function ownerOf(ctx: ApiContext, userId: number | undefined): Promise<number> {
  const caller = authOf(ctx);
  if (userId === undefined || userId === caller.user.id) return caller.user.id;
  if (!caller.scopes.has('users:write')) {
    throw new ApiError(403, 'insufficient_scope', 'a token for another user requires the users:write scope', { required_scope: 'users:write' });
  }
  const user = await ctx.state.em.findOne(User, userId);
  if (!user) throw invalidFields([{ field: 'user_id', message: `user ${userId} does not exist` }]);
  assertManageable(caller, user);
  return user.id;
}

/** A token for the calling user (or one it manages), never wider than the calling token; its secret is shown here only. */
export async function createApiToken(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createApiToken'>;
  const caller = authOf(ctx);
  const { em } = ctx.state;
  const settings = await readSettings(em, ['api_default_token_lifetime_days', 'api_default_rate_limit_per_minute']);
  const lifetime = settings.api_default_token_lifetime_days;
  let defaultExpiry = lifetime > 0 ? new Date(Date.now() + lifetime * DAY_MS) : null;
  // Without explicit values, a token made by a bounded token inherits its bounds at most.
  if (caller.token.expiresAt && (defaultExpiry === null || defaultExpiry > caller.token.expiresAt)) defaultExpiry = caller.token.expiresAt;
  const callerLimit = caller.token.rateLimitPerMinute;
  const defaultLimit = settings.api_default_rate_limit_per_minute;
  const bounds = boundsOf(body, {
    scopes: [], readOnly: false, expiresAt: defaultExpiry, allowedIps: [], allowedOrigins: [],
    repoScopeMode: 'all', repoScopeIds: [], hostScopeMode: 'all', hostScopeIds: [],
    rateLimitPerMinute: callerLimit > 0 && (defaultLimit === 0 || defaultLimit > callerLimit) ? callerLimit : defaultLimit,
  });
  checkBounds(body, bounds);
  assertWithinCaller(caller, bounds);
  const owner = await ownerOf(ctx, body.user_id);
  await checkReferences(ctx, body);
  if (isDryRun(ctx)) return respondDryRun(ctx);

  const secret = generateToken();
  const token = em.create(ApiToken, {
    user: owner,
    name: body.name,
    prefix: secret.prefix,
    tokenHash: secret.hash,
    createdByTokenId: caller.token.id,
    rateBudgetTokenId: caller.token.rateLimitPerMinute > 0 ? (caller.token.rateBudgetTokenId ?? caller.token.id) : null,
    ...bounds,
    scopes: keptScopes(bounds.scopes, bounds.readOnly),
  }, { persist: false });
  // The token and its event commit together: no token without its api_token.created.
  await em.transactional(async (tx) => {
    tx.persist(token);
    await tx.flush();
    tx.create(DomainEvent, { type: 'api_token.created', payload: { ...apiTokenView(token), by_token_id: caller.token.id } });
  });
  const view = apiTokenView(token);
  // The secret is shown once: a retry with the same Idempotency-Key learns the token exists, not its secret.
  ctx.state.replayInstead = {
    status: 409,
    body: errorBody('secret_not_replayable', `API token ${token.id} was created by the first request; its secret is shown only once (revoke it and create another if it was lost)`, { token_id: token.id }),
  };
  respondCreated(ctx, `/api-tokens/${token.id}`, { ...view, secret: secret.token });
}

export async function updateApiToken(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as TokenFields;
  const caller = authOf(ctx);
  const token = await findManagedToken(ctx);
  if (token.revokedAt) throw conflict('token_revoked', `API token ${token.id} is revoked`);
  const bounds = boundsOf(body, token);
  checkBounds(body, bounds);
  // A rename alone changes no bounds.
  if (Object.keys(body).some((field) => field !== 'name')) assertWithinCaller(caller, bounds);
  await checkReferences(ctx, body);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  if (body.name !== undefined) token.name = body.name;
  Object.assign(token, bounds, { scopes: keptScopes(bounds.scopes, bounds.readOnly) });
  await ctx.state.em.flush();
  respond(ctx, 200, apiTokenView(token));
}

export async function revokeApiToken(ctx: ApiContext): Promise<void> {
  const body = (ctx.request.body ?? {}) as RequestBody<'revokeApiToken'>;
  const token = await findManagedToken(ctx);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  if (!token.revokedAt) {
    token.revokedAt = new Date();
    token.revokedReason = body.reason ?? null;
    ctx.state.em.create(DomainEvent, { type: 'api_token.revoked', payload: { ...apiTokenView(token), by_token_id: authOf(ctx).token.id } });
    await ctx.state.em.flush();
  }
  respondNoContent(ctx);
}

export async function deleteApiToken(ctx: ApiContext): Promise<void> {
  const token = await findManagedToken(ctx);
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { api_token: apiTokenView(token) } });
  await ctx.state.em.removeAndFlush(token);
  respondNoContent(ctx);
}
