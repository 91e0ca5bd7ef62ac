import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';

/** One API request of the audit log. Token and user are plain ids: entries outlive both. */
export class ApiTokenLog {
  id!: number;
  tokenId: number | null = null;
  userId: number | null = null;
  method!: string;
  endpoint!: string;
  status!: number;
  ip: string | null = null;
  userAgent: string | null = null;
  latencyMs!: number;
  error: string | null = null;
  createdAt: Opt<Date> = new Date();
}

export const ApiTokenLogSchema = new EntitySchema<ApiTokenLog>({
  class: ApiTokenLog,
  tableName: 'api_token_logs',
  properties: {
    id: { type: new BigIntType('number'), primary: true, autoincrement: true },
    tokenId: { type: 'integer', nullable: true },
    userId: { type: 'integer', nullable: true },
    method: { type: 'string' },
    endpoint: { type: 'string' },
    status: { type: 'integer' },
    ip: { type: 'string', nullable: true },
    userAgent: { type: 'string', nullable: true },
    latencyMs: { type: 'integer' },
    error: { type: 'string', nullable: true },
    createdAt: { type: 'Date' },
  },
});
