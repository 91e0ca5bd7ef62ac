import type { FilterQuery } from '@mikro-orm/postgresql';
import { AppNotification } from '../../db/entities';
import { idFilter } from '../auth/resource-scope';
import { authOf, type ApiContext } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondNoContent } from '../envelope';
import { notFound } from '../errors';
import { findPage, pageMeta, pageOf } from '../pagination';
import { notificationView } from '../views';

/**
 * The caller's notifications that its token reaches: a token limited to some repositories or
 * hosts reads only those about them (and those about no resource, such as its owner's alerts).
 */
function mine(ctx: ApiContext): { userId: number; $and?: FilterQuery<AppNotification>[]; $or?: FilterQuery<AppNotification>[] } {
  const { user, resources } = authOf(ctx);
  const repos = idFilter(resources.repos);
  const hosts = idFilter(resources.hosts);
  return {
    userId: user.id,
    ...(repos ? { $and: [{ $or: [{ repoId: null }, { repoId: repos }] }] } : {}),
    ...(hosts ? { $or: [{ hostId: hosts }, { repoId: null, hostId: null }] } : {}),
  };
}

/** The caller's own notification, or 404 (another user's is not found, whatever its id). */
async function ownNotification(ctx: ApiContext): Promise<AppNotification> {
  const id = ctx.state.params.id as number;
  const found = await ctx.state.em.findOne(AppNotification, { id, ...mine(ctx) });
  if (!found) throw notFound(`notification ${id}`);
  return found;
}

export async function listNotifications(ctx: ApiContext): Promise<void> {
  const unread = ['1', 'true'].includes(String(ctx.state.query.unread ?? ''));
  const page = pageOf(ctx.state.query);
  const [rows, total] = await findPage(ctx.state.em, AppNotification, page, { ...mine(ctx), ...(unread ? { isRead: false } : {}) }, { id: 'desc' });
  respond(ctx, 200, rows.map(notificationView), pageMeta(page, total));
}

export async function getUnreadNotificationCount(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, { unread: await ctx.state.em.count(AppNotification, { ...mine(ctx), isRead: false }) });
}

export async function markNotificationRead(ctx: ApiContext): Promise<void> {
  const notification = await ownNotification(ctx);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  if (!notification.isRead) Object.assign(notification, { isRead: true, readAt: new Date() });
  await ctx.state.em.flush();
  respondNoContent(ctx);
}

export async function markAllNotificationsRead(ctx: ApiContext): Promise<void> {
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const updated = await ctx.state.em.nativeUpdate(AppNotification, { ...mine(ctx), isRead: false }, { isRead: true, readAt: new Date() });
  respond(ctx, 200, { updated });
}

export async function deleteNotification(ctx: ApiContext): Promise<void> {
  const notification = await ownNotification(ctx);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.removeAndFlush(notification);
  respondNoContent(ctx);
}

export async function deleteReadNotifications(ctx: ApiContext): Promise<void> {
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.nativeDelete(AppNotification, { ...mine(ctx), isRead: true });
  respondNoContent(ctx);
}
