import { PRODUCT_NAME, PRODUCT_VERSION } from '../../common/config';
import { userPermissions } from '../auth/roles';
import { authOf, type ApiContext } from '../context';
import { respond } from '../envelope';

export async function getMe(ctx: ApiContext): Promise<void> {
  const { user, token, scopes } = authOf(ctx);
  respond(ctx, 200, {
    user: {
      id: user.id,
      username: user.username,
      role: user.role,
      email: user.email,
      first_name: user.firstName,
      last_name: user.lastName,
      permissions: [...userPermissions(user)].sort(),
      repo_scope_mode: user.repoScopeMode,
      host_scope_mode: user.hostScopeMode,
    },
    token: {
      id: token.id,
      name: token.name,
      scopes: [...scopes],
      read_only: token.readOnly,
      rate_limit_per_minute: token.rateLimitPerMinute,
      expires_at: token.expiresAt?.toISOString() ?? null,
    },
    server: { name: PRODUCT_NAME, version: PRODUCT_VERSION, time: new Date().toISOString() },
  });
}
