import { ApiTokenLog } from '../../db/entities';
import { authOf, type ApiContext } from '../context';
import { respond } from '../envelope';
import { findPage, pageMeta, pageOf, timeWindow } from '../pagination';
import { apiTokenLogView } from '../views';

/**
 * The API audit log. Everyone's requests only for a token that may read users (so its user
 * administers them); any other caller sees the requests of their own tokens.
 */
export async function listApiTokenLogs(ctx: ApiContext): Promise<void> {
  const { user, scopes } = authOf(ctx);
  const query = ctx.state.query;
  const page = pageOf(query);
  const [entries, total] = await findPage(
    ctx.state.em,
    ApiTokenLog,
    page,
    {
      ...(scopes.has('users:read') ? {} : { userId: user.id }),
      ...(query.token_id ? { tokenId: query.token_id as number } : {}),
      ...(query.status ? { status: query.status as number } : {}),
      ...(query.method ? { method: query.method as string } : {}),
      ...timeWindow('createdAt', query),
    },
    { createdAt: 'desc', id: 'desc' },
  );
  respond(ctx, 200, entries.map(apiTokenLogView), pageMeta(page, total));
}
