import { ActivityLog } from '../../db/entities';
import { authOf, type ApiContext } from '../context';
import type { components } from '../contract.gen';
import { respond } from '../envelope';
import { findPage, pageMeta, pageOf, timeWindow, type Row } from '../pagination';

function activityLogView(entry: Row<ActivityLog>): components['schemas']['ActivityLog'] {
  return {
    id: Number(entry.id),
    user_id: entry.userId,
    username: entry.username,
    action: entry.action,
    details: entry.details,
    ip: entry.ip,
    user_agent: entry.userAgent,
    severity: entry.severity,
    request_id: entry.requestId,
    created_at: new Date(entry.createdAt).toISOString(),
  };
}

/**
 * Everyone's entries only for a token that may read users and reaches every repository and
 * host (entries name resources by id and name). A caller limited to some repositories or hosts
 * sees the entries made through its own token (not those its user made through wider ones);
 * any other caller, its user's.
 */
export async function listActivityLogs(ctx: ApiContext): Promise<void> {
  const { user, token, scopes, resources } = authOf(ctx);
  const limited = resources.repos !== null || resources.hosts !== null;
  const everyone = scopes.has('users:read') && !limited;
  const query = ctx.state.query;
  const asked = query.user_id as number | undefined;
  // For a caller limited to their own entries, asking for someone else's finds nothing; it never widens.
  const userId = everyone ? asked : asked === undefined || asked === user.id ? user.id : { $in: [] };
  const page = pageOf(query);
  const [entries, total] = await findPage(
    ctx.state.em,
    ActivityLog,
    page,
    {
      ...(userId === undefined ? {} : { userId }),
      ...(limited ? { tokenId: token.id } : {}),
      ...(query.action ? { action: query.action as string } : {}),
      ...(query.severity ? { severity: query.severity as ActivityLog['severity'] } : {}),
      ...timeWindow('createdAt', query),
    },
    { createdAt: 'desc', id: 'desc' },
  );
  respond(ctx, 200, entries.map(activityLogView), pageMeta(page, total));
}
