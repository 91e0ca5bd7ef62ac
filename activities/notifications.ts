import type { EntityManager } from '@mikro-orm/postgresql';
import { userPermissions } from '../api/auth/roles';
import { channelsFor, type NotificationPolicy } from '../common/notification-policy';
import { readSettings } from '../common/settings';
import { AppNotification, BackupJob, CopyJob, NotificationDelivery, Repo, Restore, User } from '../db/entities';
import type { ActivityDeps } from './deps';
import { configuredChannels, sendToChannel } from './notification-channels';
import { log } from '../common/log';

const THROTTLE_MS = 24 * 3600_000;

export interface OutboxEvent {
  id: number;
  type: string;
  payload: Record<string, unknown>;
}

/** What a notification is about, who may read it, and which policies decide its channels. */
interface Subject {
  profile: string;
  event: 'failure' | 'success' | 'alert';
  context: { type: string; id: number; name: string };
  repoId: number | null;
  hostId: number | null;
  permission: string | null;
  /** Only this user (a token's owner), whatever the permissions. */
  userId?: number;
  /** About every repository and host: only users limited to none of them. */
  unscopedOnly?: boolean;
  /** Most specific first; null entries inherit. Absent: the channels are fixed (`in_app`). */
  chain?: (NotificationPolicy | null)[];
  title: string;
  body: string;
  severity: string;
  link: string | null;
}

const text = (value: unknown) => (typeof value === 'string' ? value : '');
const failureMessage = (payload: Record<string, unknown>) => (payload.failure as { message?: string } | null)?.message ?? text(payload.output);
const policyOf = (value: unknown) => (value && typeof value === 'object' ? (value as NotificationPolicy) : null);

/** The notification an outbox event stands for, or null for events nobody is notified of. */
async function subjectOf(em: EntityManager, event: OutboxEvent): Promise<Subject | null> {
  const p = event.payload;
  // Only outcomes: `backup_job.retention_failure` and the like are warnings on a success, told by their run.
  const outcome = /^(backup_job|copy_job|restore)\.(success|failure)$/.exec(event.type);
  const kind = outcome?.[1];
  const failed = outcome?.[2] === 'failure';
  const common = { event: failed ? ('failure' as const) : ('success' as const), severity: failed ? 'error' : 'success' };
  if (kind === 'backup_job') {
    const job = await em.findOne(BackupJob, Number(p.id));
    const repo = await em.findOne(Repo, Number(p.repo_id));
    return {
      ...common, profile: 'backup_job', context: { type: 'backup_job', id: Number(p.id), name: text(p.name) },
      repoId: Number(p.repo_id), hostId: (p.host_id as number | null) ?? null, permission: 'backup_jobs.manage',
      // The job's policy, then its older switch for failures (notify_on_failure), then the repository's.
      chain: [policyOf(job?.notificationPolicy), failed && job?.notifyOnFailure === false ? { inherit: false } : null, policyOf(repo?.notificationPolicy)],
      title: `Backup job ${text(p.name)} ${failed ? 'failed' : 'succeeded'}`,
      body: failed ? failureMessage(p) : text(p.output), link: `/api/v1/backup-jobs/${Number(p.id)}/runs/${text(p.run_id)}`,
    };
  }
  if (kind === 'copy_job') {
    const job = await em.findOne(CopyJob, Number(p.id), { populate: ['sourceRepo'] });
    if (!job) return null;
    return {
      ...common, profile: 'copy_job', context: { type: 'copy_job', id: job.id, name: job.name },
      repoId: job.sourceRepo.id, hostId: job.destHost ? job.destHost.id : null, permission: 'copy_jobs.manage',
      chain: [policyOf(job.notificationPolicy), policyOf(job.sourceRepo.notificationPolicy)],
      title: `Copy job ${job.name} ${failed ? 'failed' : 'succeeded'}`, body: failed ? failureMessage(p) : text(p.output), link: `/api/v1/copy-jobs/${job.id}`,
    };
  }
  if (event.type === 'repo.check.failure') {
    const repo = await em.findOne(Repo, Number(p.id));
    return {
      ...common, profile: 'integrity_check', context: { type: 'repo', id: Number(p.id), name: text(p.name) },
      repoId: Number(p.id), hostId: null, permission: 'repos.view', chain: [policyOf(repo?.notificationPolicy)],
      title: `The check of repository ${text(p.name)} failed`, body: text(p.output), link: `/api/v1/repos/${Number(p.id)}/runs/${text(p.run_id)}`,
    };
  }
  if (kind === 'restore') {
    const restore = await em.findOne(Restore, Number(p.id));
    if (!restore) return null;
    const repo = await em.findOne(Repo, restore.repoId);
    return {
      ...common, profile: 'restore', context: { type: 'restore', id: restore.id, name: restore.repoName },
      repoId: restore.repoId, hostId: restore.hostId, permission: 'restore.view', chain: [policyOf(repo?.notificationPolicy)],
      title: `Restore ${restore.id} from ${restore.repoName} ${failed ? 'failed' : 'succeeded'}`,
      body: failed ? failureMessage(p) : `restored into ${restore.resolvedTarget ?? ''}`, link: `/api/v1/restores/${restore.id}`,
    };
  }
  const missed = /^(backup|copy)_job\.missed$/.exec(event.type)?.[1];
  if (missed) {
    const job = missed === 'backup' ? await em.findOne(BackupJob, Number(p.id)) : await em.findOne(CopyJob, Number(p.id));
    if (!job) return null;
    const repo = await em.findOne(Repo, Number(p.repo_id));
    return {
      event: 'failure', severity: 'warning', profile: `${missed}_job`, context: { type: `${missed}_job`, id: job.id, name: job.name },
      repoId: Number(p.repo_id), hostId: (p.host_id as number | null) ?? null, permission: `${missed}_jobs.manage`,
      // A missed run is a failure to back up: the job's failure channels tell it.
      chain: [policyOf(job.notificationPolicy), policyOf(repo?.notificationPolicy)],
      title: `${missed === 'backup' ? 'Backup' : 'Copy'} job ${job.name} did not run`,
      body: `The run due at ${text(p.due_at)} had not succeeded ${Number(p.grace_minutes)} minutes later.`,
      link: `/api/v1/${missed}-jobs/${job.id}`,
    };
  }
  if (event.type === 'report.weekly') {
    const backups = p.backups as { total: number; success: number; failed: number };
    const stale = (p.stale_repos as { name: string }[]).map((repo) => repo.name);
    return {
      event: 'alert', severity: backups.failed > 0 || stale.length > 0 ? 'warning' : 'info', profile: 'weekly_report',
      // One context per report, so that a week's report is never throttled as a repeat of the last.
      context: { type: 'report', id: Math.floor(Date.parse(text(p.period_end)) / 86_400_000), name: 'weekly report' },
      repoId: null, hostId: null, permission: 'stats.view', unscopedOnly: true,
      title: `Weekly report: ${backups.success} of ${backups.total} backups succeeded`,
      body: [`${backups.failed} backups failed.`, stale.length ? `Repositories without a recent snapshot: ${stale.join(', ')}.` : 'Every repository has a recent snapshot.'].join(' '),
      link: '/api/v1/stats/summary',
    };
  }
  if (event.type === 'api_token.revoked') {
    return {
      event: 'alert', severity: 'warning', profile: 'security', context: { type: 'api_token', id: Number(p.id), name: text(p.name) },
      repoId: null, hostId: null, permission: null, userId: Number(p.user_id),
      title: `Your API token ${text(p.name)} was revoked`, body: text(p.revoked_reason), link: `/api/v1/api-tokens/${Number(p.id)}`,
    };
  }
  return null;
}

/** Enabled users who may see the subject: by permission and by their repository and host scope. */
async function recipientsOf(em: EntityManager, subject: Subject): Promise<User[]> {
  const now = new Date();
  const users = await em.find(User, subject.userId !== undefined ? { id: subject.userId, enabled: true } : { enabled: true });
  return users.filter((user) => {
    if ((user.suspendedUntil && user.suspendedUntil > now) || (user.accountExpiresAt && user.accountExpiresAt <= now)) return false;
    if (subject.userId !== undefined) return true; // told to its owner, whatever their scope
    if (subject.permission && !userPermissions(user).has(subject.permission)) return false;
    if (subject.unscopedOnly && (user.repoScopeMode === 'selected' || user.hostScopeMode === 'selected')) return false;
    if (user.repoScopeMode === 'selected' && subject.repoId !== null && !user.repoScopeIds.includes(subject.repoId)) return false;
    // A run on the control plane itself is out of reach of a host-limited user, as in the API.
    return !(user.hostScopeMode === 'selected' && (subject.hostId === null || !user.hostScopeIds.includes(subject.hostId)));
  });
}

/**
 * Repeated failures of one thing are told once a day: a failure is held back if the same failure
 * of the same context was sent within 24 hours and nothing succeeded since. Only sent
 * notifications open that window, so a failure that keeps recurring is told again every day.
 */
async function throttled(em: EntityManager, subject: Subject): Promise<boolean> {
  if (subject.event !== 'failure') return false;
  // Ordered by id, not time: one relay pass logs several occurrences at the same now().
  const [row] = await em.execute<{ sent_id: string | null; sent_at: Date | null; success_id: string | null }[]>(
    `select (select id from notification_log l where l.profile_key = c.p and l.context_type = c.t and l.context_id = c.i and event_key = ? and outcome = 'sent' order by id desc limit 1) as sent_id,
            (select created_at from notification_log l where l.profile_key = c.p and l.context_type = c.t and l.context_id = c.i and event_key = ? and outcome = 'sent' order by id desc limit 1) as sent_at,
            (select max(id) from notification_log l where l.profile_key = c.p and l.context_type = c.t and l.context_id = c.i and event_key = 'success') as success_id
       from (select ?::text as p, ?::text as t, ?::int as i) c`,
    [subject.event, subject.event, subject.profile, subject.context.type, subject.context.id],
  );
  if (!row?.sent_id || !row.sent_at) return false;
  const succeededSince = row.success_id !== null && Number(row.success_id) > Number(row.sent_id);
  return Date.now() - new Date(row.sent_at).getTime() < THROTTLE_MS && !succeededSince;
}

/**
 * The notifications of outbox events, written in the relay's transaction (once per event): rows
 * in the in-app inboxes, and a delivery per external channel that is configured (sent by its
 * own workflow). Every occurrence is logged with what became of it.
 */
export async function notifyEvents(em: EntityManager, events: OutboxEvent[]): Promise<void> {
  const settings = await readSettings(em, ['notification_failure_channels', 'notification_success_channels']);
  const external = await configuredChannels(em);
  for (const event of events) {
    // In a savepoint: an event that cannot be notified is logged and skipped, never a block on the outbox.
    await em.transactional((tx) => notifyEvent(tx, event, settings, external)).catch((error: unknown) => {
      log.error({ err: error, event_id: event.id, event_type: event.type }, 'notifying the event failed; it is skipped');
    });
  }
}

async function notifyEvent(
  em: EntityManager,
  event: OutboxEvent,
  settings: { notification_failure_channels: string[]; notification_success_channels: string[] },
  external: Set<string>,
): Promise<void> {
  const subject = await subjectOf(em, event);
  if (!subject) return;
  const wanted = subject.chain
    ? channelsFor(subject.event, subject.chain, subject.event === 'failure' ? settings.notification_failure_channels : settings.notification_success_channels)
    : ['in_app'];
  const channels = wanted.filter((channel) => channel === 'in_app' || external.has(channel));
  const recipients = channels.includes('in_app') ? await recipientsOf(em, subject) : [];
  const reachable = channels.filter((channel) => channel !== 'in_app' || recipients.length > 0);
  const outcome = channels.length === 0 ? 'no_channel' : reachable.length === 0 ? 'no_recipient' : (await throttled(em, subject)) ? 'throttled' : 'sent';
  if (outcome === 'sent') {
    for (const user of recipients) {
      em.create(AppNotification, {
        userId: user.id, profileKey: subject.profile, eventKey: subject.event, contextType: subject.context.type, contextId: subject.context.id,
        contextName: subject.context.name, repoId: subject.repoId, hostId: subject.hostId, title: subject.title, body: subject.body.slice(0, 4000), severity: subject.severity, linkUrl: subject.link,
      });
    }
    const message = {
      title: subject.title, body: subject.body.slice(0, 4000), profile: subject.profile, event: subject.event, severity: subject.severity,
      contextType: subject.context.type, contextId: subject.context.id, contextName: subject.context.name, link: subject.link, createdAt: new Date().toISOString(),
    };
    for (const channel of reachable.filter((c) => c !== 'in_app')) em.create(NotificationDelivery, { eventId: event.id, channel, message });
    await em.flush();
  }
  await em.execute(
    'insert into notification_log (event_id, profile_key, event_key, context_type, context_id, channels, outcome, recipients) values (?, ?, ?, ?, ?, ?, ?, ?)',
    [event.id, subject.profile, subject.event, subject.context.type, subject.context.id, reachable.join(',') || null, outcome, outcome === 'sent' ? recipients.length : 0],
  );
}

/** Sending one external notification, for its delivery workflow. */
export function notificationActivities({ orm, secrets }: ActivityDeps) {
  return {
    /** Sends it (each call is an attempt, counted); throws while the channel refuses, so Temporal retries. */
    async sendNotification({ deliveryId }: { deliveryId: number }): Promise<void> {
      const em = orm.em.fork();
      const delivery = await em.findOne(NotificationDelivery, deliveryId);
      if (!delivery || delivery.state !== 'pending') return;
      delivery.attempts += 1;
      try {
        await sendToChannel(em, secrets, delivery.channel, delivery.message);
      } catch (error) {
        delivery.error = (error as Error).message;
        await em.flush();
        throw error;
      }
      Object.assign(delivery, { state: 'delivered', error: null, deliveredAt: new Date() });
      await em.flush();
    },

    async recordNotificationFailed({ deliveryId, error }: { deliveryId: number; error: string }): Promise<void> {
      await orm.em.fork().nativeUpdate(NotificationDelivery, { id: deliveryId, state: 'pending' }, { state: 'failed', error });
    },
  };
}
