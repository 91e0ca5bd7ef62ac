import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';

/** An event of the outbox (`api_token.created`, ...), written in the transaction of its change. */
export class DomainEvent {
  id!: number;
  type!: string;
  payload!: Record<string, unknown>;
  createdAt: Opt<Date> = new Date();
  /** When the relay handed it to the webhooks subscribed to it. */
  relayedAt: Date | null = null;
}

export const DomainEventSchema = new EntitySchema<DomainEvent>({
  class: DomainEvent,
  tableName: 'events',
  properties: {
    id: { type: new BigIntType('number'), primary: true, autoincrement: true },
    type: { type: 'string' },
    payload: { type: 'json' },
    createdAt: { type: 'Date' },
    relayedAt: { type: 'Date', nullable: true },
  },
});
