import { randomBytes, randomUUID } from 'node:crypto';
import { resolveTarget } from '../../common/outbound-target';
import { readSettings } from '../../common/settings';
import { webhookBody } from '../../common/webhook-body';
import { WEBHOOK_EVENTS } from '../../common/webhook-events';
import { Webhook, WebhookDelivery, WebhookDeliveryAttempt, type DeliveryState } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { RunKindKey } from '../../workflows/search-attributes';
import { webhookDelivery, webhookDeliveryWorkflowId } from '../../workflows/webhook-delivery';
import type { ApiContext, RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { errorBody, respond, respondCreated, respondNoContent } from '../envelope';
import { ApiError, conflict, invalidField, notFound } from '../errors';
import { findOr404 } from '../lookup';
import { findPage, pageMeta, pageOf } from '../pagination';
import { webhookDeliveryView, webhookView } from '../views';
import { executeWorkflow } from '../workflow-calls';
import { log } from '../../common/log';

const findWebhook = (ctx: ApiContext, id: number) => findOr404(ctx.state.em, Webhook, id, 'webhook');

/** The URL must be allowed and resolve now to allowed addresses; deliveries check again each time. */
async function checkUrl(ctx: ApiContext, url: string): Promise<void> {
  const { webhook_allow_private_targets: allowPrivate } = await readSettings(ctx.state.em, ['webhook_allow_private_targets']);
  try {
    await resolveTarget(url, allowPrivate);
  } catch (error) {
    throw invalidField('url', (error as Error).message);
  }
}

const sealSecret = (ctx: ApiContext, secret: string) => ctx.services.secrets.seal(secret, SecretPurpose.webhookSecret);

async function deliveryViews(ctx: ApiContext, deliveries: WebhookDelivery[]) {
  const attempts = deliveries.length === 0 ? [] : await ctx.state.em.find(WebhookDeliveryAttempt, { deliveryId: { $in: deliveries.map((d) => d.id) } }, { orderBy: { attempt: 'asc' } });
  return deliveries.map((d) => webhookDeliveryView(d, attempts.filter((a) => a.deliveryId === d.id)));
}

/** Starts a delivery's workflow now; if Temporal cannot be reached, the worker's relay starts it later. */
async function startDelivery(ctx: ApiContext, delivery: WebhookDelivery): Promise<void> {
  try {
    await ctx.services.temporal.workflow.start(webhookDelivery, {
      workflowId: webhookDeliveryWorkflowId(delivery.id),
      taskQueue: ctx.services.temporalConfig.taskQueue,
      args: [{ deliveryId: delivery.id }],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: RunKindKey, value: 'webhook-delivery' }],
    });
  } catch (error) {
    log.error({ err: error, workflow_id: webhookDeliveryWorkflowId(delivery.id) }, 'starting the delivery workflow failed; the relay will');
    return;
  }
  delivery.workflowStarted = true;
  await ctx.state.em.flush();
}

export async function listWebhooks(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const [webhooks, total] = await findPage(ctx.state.em, Webhook, page, {});
  respond(ctx, 200, webhooks.map(webhookView), pageMeta(page, total));
}

export async function getWebhook(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, webhookView(await findWebhook(ctx, ctx.state.params.id as number)));
}

export async function listWebhookEvents(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, { events: [...WEBHOOK_EVENTS] });
}

/** The secret is generated (32 random bytes, hex) unless given, and shown in this answer only. */
export async function createWebhook(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createWebhook'>;
  await checkUrl(ctx, body.url);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const secret = body.secret ?? randomBytes(32).toString('hex');
  const webhook = ctx.state.em.create(Webhook, { name: body.name, url: body.url, events: body.events, enabled: body.enabled ?? true, secretSecret: sealSecret(ctx, secret) });
  await ctx.state.em.flush();
  // Shown once: a retry with the same Idempotency-Key learns the webhook exists, not its secret.
  ctx.state.replayInstead = {
    status: 409,
    body: errorBody('secret_not_replayable', `webhook ${webhook.id} was created by the first request; its secret is shown only once (rotate it with PATCH if it was lost)`, { webhook_id: webhook.id }),
  };
  respondCreated(ctx, `/webhooks/${webhook.id}`, { ...webhookView(webhook), secret });
}

/** A new `secret` rotates it (not echoed); deliveries still retrying sign with the new one. */
export async function updateWebhook(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'updateWebhook'>;
  const webhook = await findWebhook(ctx, ctx.state.params.id as number);
  if (body.url !== undefined) await checkUrl(ctx, body.url);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  if (body.name !== undefined) webhook.name = body.name;
  if (body.url !== undefined) webhook.url = body.url;
  if (body.events !== undefined) webhook.events = body.events;
  if (body.enabled !== undefined) webhook.enabled = body.enabled;
  if (body.secret !== undefined) webhook.secretSecret = sealSecret(ctx, body.secret);
  await ctx.state.em.flush();
  respond(ctx, 200, webhookView(webhook));
}

/** Its deliveries go with it; those still retrying stop at their next attempt. */
export async function deleteWebhook(ctx: ApiContext): Promise<void> {
  const webhook = await findWebhook(ctx, ctx.state.params.id as number);
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { webhook: webhookView(webhook) } });
  await ctx.state.em.removeAndFlush(webhook);
  respondNoContent(ctx);
}

/** One attempt of `webhook.test`, waited for and recorded like any delivery. */
export async function testWebhook(ctx: ApiContext): Promise<void> {
  const webhook = await findWebhook(ctx, ctx.state.params.id as number);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const settings = await readSettings(ctx.state.em, ['app_name', 'webhook_timeout_seconds']);
  const at = new Date();
  const delivery = ctx.state.em.create(WebhookDelivery, {
    webhookId: webhook.id,
    guid: randomUUID(),
    event: 'webhook.test',
    body: webhookBody('webhook.test', at, { message: `Test event from ${settings.app_name}`, at: at.toISOString() }),
    once: true,
    workflowStarted: true,
  });
  await ctx.state.em.flush();
  try {
    await executeWorkflow(ctx.services, webhookDelivery, {
      workflowId: webhookDeliveryWorkflowId(delivery.id),
      args: [{ deliveryId: delivery.id }],
      typedSearchAttributes: [{ key: RunKindKey, value: 'webhook-test' }],
    }, settings.webhook_timeout_seconds + 30);
  } catch (error) {
    // Not attempted (no worker, none in time, Temporal unreachable): recorded as such, never left pending.
    const why = error instanceof ApiError ? error.message : 'the workflow service could not be reached';
    await ctx.state.em.nativeUpdate(WebhookDelivery, { id: delivery.id, state: 'pending' }, { state: 'failed', error: `the test delivery was not carried out: ${why}` });
    throw error;
  }
  await ctx.state.em.refresh(delivery);
  respond(ctx, 200, { status: delivery.status, error: delivery.error, final_url: webhook.url, response_body_stored: delivery.response !== null, delivery_id: delivery.id });
}

export async function listWebhookDeliveries(ctx: ApiContext): Promise<void> {
  const webhook = await findWebhook(ctx, ctx.state.params.id as number);
  const { event, state } = ctx.state.query as { event?: string; state?: DeliveryState };
  const page = pageOf(ctx.state.query);
  const [deliveries, total] = await findPage(ctx.state.em, WebhookDelivery, page, { webhookId: webhook.id, ...(event ? { event } : {}), ...(state ? { state } : {}) }, { id: 'desc' });
  respond(ctx, 200, await deliveryViews(ctx, deliveries as WebhookDelivery[]), pageMeta(page, total));
}

/** The same bytes as a new delivery (new guid), signed with the current secret, with the usual retries. */
export async function redeliverWebhookDelivery(ctx: ApiContext): Promise<void> {
  const webhook = await findWebhook(ctx, ctx.state.params.id as number);
  const original = await ctx.state.em.findOne(WebhookDelivery, { id: ctx.state.params.delivery_id as number, webhookId: webhook.id });
  if (!original) throw notFound(`delivery ${String(ctx.state.params.delivery_id)} of webhook ${webhook.id}`);
  if (!webhook.enabled) throw conflict('webhook_disabled', `webhook ${webhook.id} is disabled: enable it before redelivering`);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const delivery = ctx.state.em.create(WebhookDelivery, {
    webhookId: webhook.id, guid: randomUUID(), eventId: original.eventId, event: original.event, body: original.body, redeliveryOf: original.id,
  });
  await ctx.state.em.flush();
  await startDelivery(ctx, delivery);
  respond(ctx, 202, (await deliveryViews(ctx, [delivery]))[0]);
}
