import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { resolveTarget } from '../common/outbound-target';
import { readSettings } from '../common/settings';
import { webhookBody } from '../common/webhook-body';
import { isWebhookEvent } from '../common/webhook-events';
import { NotificationDelivery, Webhook, WebhookDelivery, WebhookDeliveryAttempt } from '../db/entities';
import { SecretPurpose } from '../db/secret-box';
import { notificationDelivery, notificationDeliveryWorkflowId } from '../workflows/notification-delivery';
import { webhookDelivery, webhookDeliveryWorkflowId } from '../workflows/webhook-delivery';
import { RunKindKey } from '../workflows/search-attributes';
import type { ActivityDeps } from './deps';
import { notifyEvents } from './notifications';
import { postSigned, retryDelaySeconds } from './webhook-http';

const RELAY_BATCH = 100;

/** What one attempt came to, already recorded on the delivery: done, or when to try again. */
export type AttemptOutcome = { outcome: 'delivered' | 'stopped' | 'failed' } | { outcome: 'retry'; nextAttemptAt: string };

/** How long a delivery keeps trying: from `initialSeconds` apart, doubling, until `until` (ISO). Null: one attempt. */
export type RetryWindow = { initialSeconds: number; until: string } | null;

export interface DeliveryPolicy {
  once: boolean;
  retryHours: number;
  initialSeconds: number;
}

interface EventRow {
  id: number;
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

const isDelivered = (status: number, error: string | null) => error === null && status >= 200 && status < 300;

/** The outcome a delivery's row already shows (an attempt recorded by a worker that died before answering). */
function recordedOutcome(delivery: WebhookDelivery): AttemptOutcome {
  if (delivery.state === 'retrying' && delivery.nextAttemptAt) return { outcome: 'retry', nextAttemptAt: delivery.nextAttemptAt.toISOString() };
  if (delivery.state === 'delivered') return { outcome: 'delivered' };
  return { outcome: delivery.status === 410 ? 'stopped' : 'failed' };
}

/** The outbox relay and the attempts of webhook deliveries. */
export function webhookActivities({ orm, secrets, temporal }: ActivityDeps) {
  /**
   * Starts the workflows of deliveries that have none yet (new, or left by a relay that died
   * before starting them): webhook deliveries, then notifications to external channels.
   */
  async function startDeliveries(): Promise<number> {
    const webhooks = await startPending(WebhookDelivery, webhookDelivery, webhookDeliveryWorkflowId, 'webhook-delivery');
    return webhooks + (await startPending(NotificationDelivery, notificationDelivery, notificationDeliveryWorkflowId, 'notification'));
  }

  async function startPending(
    entity: typeof WebhookDelivery | typeof NotificationDelivery,
    workflow: typeof webhookDelivery | typeof notificationDelivery,
    workflowId: (id: number) => string,
    kind: string,
  ): Promise<number> {
    const em = orm.em.fork();
    const pending = await em.find(entity as typeof WebhookDelivery, { workflowStarted: false }, { orderBy: { id: 'asc' }, limit: RELAY_BATCH });
    for (const delivery of pending) {
      try {
        await temporal.workflow.start(workflow, {
          workflowId: workflowId(delivery.id),
          taskQueue: Context.current().info.taskQueue,
          args: [{ deliveryId: delivery.id }],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: [{ key: RunKindKey, value: kind }],
        });
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      }
      await em.nativeUpdate(entity as typeof WebhookDelivery, { id: delivery.id }, { workflowStarted: true });
    }
    return pending.length;
  }

  return {
    /**
     * Hands the outbox's new events to the webhooks subscribed to them (one delivery row per
     * (event, webhook)) and to in-app notifications, in the transaction that marks the events
     * relayed; then starts a workflow per delivery. Returns how much it did (0: nothing was waiting).
     */
    async relayEvents(): Promise<number> {
      const relayed = await orm.em.fork().transactional(async (em) => {
        const events = await em.execute<EventRow[]>('select id, type, payload, created_at from events where relayed_at is null order by id limit ? for update skip locked', [RELAY_BATCH]);
        if (events.length === 0) return 0;
        const webhooks = await em.find(Webhook, { enabled: true });
        for (const event of events) {
          if (!isWebhookEvent(event.type)) continue;
          const body = webhookBody(event.type, new Date(event.created_at), event.payload);
          // A webhook gets the events that happened once it existed, not the backlog before it.
          const subscribed = webhooks.filter((w) => w.events.includes(event.type) && w.createdAt <= new Date(event.created_at));
          for (const webhook of subscribed) {
            em.create(WebhookDelivery, { webhookId: webhook.id, guid: randomUUID(), eventId: Number(event.id), event: event.type, body });
          }
        }
        await em.flush();
        await notifyEvents(em, events.map((e) => ({ id: Number(e.id), type: e.type, payload: e.payload })));
        await em.execute('update events set relayed_at = now() where id in (?)', [events.map((e) => e.id)]);
        return events.length;
      });
      return relayed + (await startDeliveries());
    },

    async deliveryPolicy({ deliveryId }: { deliveryId: number }): Promise<DeliveryPolicy> {
      const em = orm.em.fork();
      const delivery = await em.findOneOrFail(WebhookDelivery, deliveryId);
      const settings = await readSettings(em, ['webhook_retry_hours', 'webhook_retry_initial_seconds']);
      return { once: delivery.once, retryHours: settings.webhook_retry_hours, initialSeconds: settings.webhook_retry_initial_seconds };
    },

    /**
     * One attempt: the stored body, signed with the webhook's current secret, to the address
     * its URL resolves to now (checked again: it may have been re-pointed). Every attempt is
     * recorded with what follows it, in one transaction: a 2xx delivers; 410 Gone disables the
     * webhook; anything else is given its next attempt time, or fails once the window is over.
     */
    async attemptDelivery({ deliveryId, attempt, retry }: { deliveryId: number; attempt: number; retry: RetryWindow }): Promise<AttemptOutcome> {
      const em = orm.em.fork();
      const delivery = await em.findOne(WebhookDelivery, deliveryId);
      if (!delivery) return { outcome: 'stopped' };
      // An activity retried after its attempt was recorded (its worker died just after) sends nothing again.
      if (await em.findOne(WebhookDeliveryAttempt, { deliveryId, attempt })) return recordedOutcome(delivery);
      const webhook = await em.findOne(Webhook, delivery.webhookId);
      if (!webhook || (!webhook.enabled && !delivery.once)) {
        await em.nativeUpdate(WebhookDelivery, { id: deliveryId }, { state: 'failed', error: 'the webhook was disabled or deleted', nextAttemptAt: null });
        return { outcome: 'stopped' };
      }
      const settings = await readSettings(em, ['webhook_allow_private_targets', 'webhook_timeout_seconds', 'api_webhook_store_response_body_debug']);
      const attemptedAt = new Date();
      let result;
      try {
        const target = await resolveTarget(webhook.url, settings.webhook_allow_private_targets);
        result = await postSigned({
          target,
          event: delivery.event,
          guid: delivery.guid,
          body: Buffer.from(delivery.body),
          secret: secrets.open(webhook.secretSecret, SecretPurpose.webhookSecret),
          timeoutMs: settings.webhook_timeout_seconds * 1000,
        });
      } catch (error) {
        result = { status: 0, error: (error as Error).message, latencyMs: Date.now() - attemptedAt.getTime(), retryAfterSeconds: null, responseText: '' };
      }
      const delivered = isDelivered(result.status, result.error);
      const gone = result.status === 410;
      const nextAttemptAt = delivered || gone || !retry ? null : new Date(Date.now() + retryDelaySeconds(attempt, retry.initialSeconds, result.retryAfterSeconds, Math.random()) * 1000);
      const retrying = nextAttemptAt !== null && nextAttemptAt.getTime() <= Date.parse(retry?.until ?? '');
      const state = delivered ? 'delivered' : retrying ? 'retrying' : 'failed';
      await em.transactional(async (tx) => {
        tx.create(WebhookDeliveryAttempt, { deliveryId, attempt, attemptedAt, status: result.status, latencyMs: result.latencyMs, error: result.error });
        await tx.nativeUpdate(WebhookDelivery, { id: deliveryId }, {
          state,
          status: result.status,
          error: result.error,
          response: settings.api_webhook_store_response_body_debug ? result.responseText : null,
          attempts: attempt,
          attemptedAt,
          nextAttemptAt: retrying ? nextAttemptAt : null,
        });
        await tx.nativeUpdate(Webhook, { id: webhook.id }, {
          lastStatus: result.status,
          lastAttemptAt: attemptedAt,
          lastError: gone ? 'the receiver answered 410 Gone: the webhook was disabled' : result.error,
          ...(gone ? { enabled: false } : {}),
        });
      });
      if (retrying) return { outcome: 'retry', nextAttemptAt: (nextAttemptAt as Date).toISOString() };
      return { outcome: delivered ? 'delivered' : gone ? 'stopped' : 'failed' };
    },

    async abandonDelivery({ deliveryId, error }: { deliveryId: number; error?: string }): Promise<void> {
      await orm.em.fork().nativeUpdate(WebhookDelivery, { id: deliveryId }, { state: 'failed', nextAttemptAt: null, ...(error ? { error } : {}) });
    },
  };
}
