import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';

export type ActivitySeverity = 'info' | 'warning' | 'critical';

/**
 * Who changed what: one entry per successful API mutation. The user is a plain id with the
 * username copied, so entries outlive the account; details hold ids and names, never secrets.
 */
export class ActivityLog {
  id!: number;
  userId: number | null = null;
  /** The API token the change was made through. */
  tokenId: number | null = null;
  username!: string;
  action!: string;
  severity: Opt<ActivitySeverity> = 'info';
  details: Record<string, unknown> | null = null;
  ip: string | null = null;
  userAgent: string | null = null;
  requestId: string | null = null;
  createdAt: Opt<Date> = new Date();
}

export const ActivityLogSchema = new EntitySchema<ActivityLog>({
  class: ActivityLog,
  tableName: 'activity_logs',
  properties: {
    id: { type: new BigIntType('number'), primary: true, autoincrement: true },
    userId: { type: 'integer', nullable: true },
    tokenId: { type: 'integer', nullable: true },
    username: { type: 'string' },
    action: { type: 'string' },
    severity: { type: 'string' },
    details: { type: 'json', nullable: true },
    ip: { type: 'string', nullable: true },
    userAgent: { type: 'string', nullable: true },
    requestId: { type: 'string', nullable: true },
    createdAt: { type: 'Date' },
  },
});
