import { EntitySchema, type Opt } from '@mikro-orm/core';

/** A signed outgoing webhook: the events it receives and the state of its last attempt. */
export class Webhook {
  id!: number;
  name!: string;
  url!: string;
  events!: string[];
  enabled: Opt<boolean> = true;
  /** The HMAC signing secret, sealed. */
  secretSecret!: string;
  lastStatus: number | null = null;
  lastAttemptAt: Date | null = null;
  lastError: string | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const WebhookSchema = new EntitySchema<Webhook>({
  class: Webhook,
  tableName: 'webhooks',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string' },
    url: { type: 'text' },
    events: { type: 'json' },
    enabled: { type: 'boolean' },
    secretSecret: { type: 'text' },
    lastStatus: { type: 'integer', nullable: true },
    lastAttemptAt: { type: 'Date', nullable: true },
    lastError: { type: 'text', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
