import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';

/** A notification in a user's in-app inbox. */
export class AppNotification {
  id!: number;
  userId!: number;
  profileKey!: string;
  eventKey!: string;
  contextType: string | null = null;
  contextId: number | null = null;
  contextName: string | null = null;
  /** The repository and host it is about, so a token limited to others does not read it. */
  repoId: number | null = null;
  hostId: number | null = null;
  title!: string;
  body!: string;
  severity!: string;
  linkUrl: string | null = null;
  browserDelivery: Opt<boolean> = false;
  isRead: Opt<boolean> = false;
  createdAt: Opt<Date> = new Date();
  readAt: Date | null = null;
}

export const AppNotificationSchema = new EntitySchema<AppNotification>({
  class: AppNotification,
  tableName: 'app_notifications',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    userId: { type: 'integer' },
    profileKey: { type: 'string' },
    eventKey: { type: 'string' },
    contextType: { type: 'string', nullable: true },
    contextId: { type: 'integer', nullable: true },
    contextName: { type: 'text', nullable: true },
    repoId: { type: 'integer', nullable: true },
    hostId: { type: 'integer', nullable: true },
    title: { type: 'text' },
    body: { type: 'text' },
    severity: { type: 'string' },
    linkUrl: { type: 'text', nullable: true },
    browserDelivery: { type: 'boolean' },
    isRead: { type: 'boolean' },
    createdAt: { type: 'Date' },
    readAt: { type: 'Date', nullable: true },
  },
});

/** What a channel message says, whatever the channel's format. */
export interface NotificationMessage {
  title: string;
  body: string;
  profile: string;
  event: string;
  severity: string;
  contextType: string;
  contextId: number;
  contextName: string;
  link: string | null;
  createdAt: string;
}

/** One notification to one external channel (`notification-delivery-<id>`). */
export class NotificationDelivery {
  id!: number;
  eventId: number | null = null;
  channel!: string;
  message!: NotificationMessage;
  state: Opt<'pending' | 'delivered' | 'failed'> = 'pending';
  attempts: Opt<number> = 0;
  error: string | null = null;
  workflowStarted: Opt<boolean> = false;
  createdAt: Opt<Date> = new Date();
  deliveredAt: Date | null = null;
}

export const NotificationDeliverySchema = new EntitySchema<NotificationDelivery>({
  class: NotificationDelivery,
  tableName: 'notification_deliveries',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    eventId: { type: new BigIntType('number'), nullable: true },
    channel: { type: 'string' },
    message: { type: 'json' },
    state: { type: 'string' },
    attempts: { type: 'integer' },
    error: { type: 'text', nullable: true },
    workflowStarted: { type: 'boolean' },
    createdAt: { type: 'Date' },
    deliveredAt: { type: 'Date', nullable: true },
  },
});
