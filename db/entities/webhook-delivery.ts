import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';

export type DeliveryState = 'pending' | 'retrying' | 'delivered' | 'failed';

/** One event for one webhook (workflow `webhook-delivery-<id>`), with the exact body every attempt sends. */
export class WebhookDelivery {
  id!: number;
  webhookId!: number;
  /** The `X-Fulgurite-Delivery` header: the same on every attempt. */
  guid!: string;
  eventId: number | null = null;
  event!: string;
  body!: string;
  state: Opt<DeliveryState> = 'pending';
  status: Opt<number> = 0;
  response: string | null = null;
  error: string | null = null;
  attempts: Opt<number> = 0;
  nextAttemptAt: Date | null = null;
  attemptedAt: Date | null = null;
  redeliveryOf: number | null = null;
  /** One attempt only (the test endpoint). */
  once: Opt<boolean> = false;
  workflowStarted: Opt<boolean> = false;
  createdAt: Opt<Date> = new Date();
}

export const WebhookDeliverySchema = new EntitySchema<WebhookDelivery>({
  class: WebhookDelivery,
  tableName: 'webhook_deliveries',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    webhookId: { type: 'integer' },
    guid: { type: 'uuid' },
    eventId: { type: new BigIntType('number'), nullable: true },
    event: { type: 'string' },
    body: { type: 'text' },
    state: { type: 'string' },
    status: { type: 'integer' },
    response: { type: 'text', nullable: true },
    error: { type: 'text', nullable: true },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'Date', nullable: true },
    attemptedAt: { type: 'Date', nullable: true },
    redeliveryOf: { type: 'integer', nullable: true },
    once: { type: 'boolean' },
    workflowStarted: { type: 'boolean' },
    createdAt: { type: 'Date' },
  },
});

/** One HTTP attempt of a delivery. */
export class WebhookDeliveryAttempt {
  id!: number;
  deliveryId!: number;
  attempt!: number;
  attemptedAt!: Date;
  status!: number;
  latencyMs!: number;
  error: string | null = null;
}

export const WebhookDeliveryAttemptSchema = new EntitySchema<WebhookDeliveryAttempt>({
  class: WebhookDeliveryAttempt,
  tableName: 'webhook_delivery_attempts',
  properties: {
    id: { type: new BigIntType('number'), primary: true, autoincrement: true },
    deliveryId: { type: 'integer' },
    attempt: { type: 'integer' },
    attemptedAt: { type: 'Date' },
    status: { type: 'integer' },
    latencyMs: { type: 'integer' },
    error: { type: 'text', nullable: true },
  },
});
