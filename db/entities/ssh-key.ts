import { EntitySchema, type Opt } from '@mikro-orm/core';

export class SshKey {
  id!: number;
  name!: string;
  host!: string;
  user: Opt<string> = 'root';
  port: Opt<number> = 22;
  /** Sealed with SecretBox (purpose ssh_keys.private_key); never leaves the server. */
  privateKeySecret!: string;
  publicKey!: string;
  fingerprint!: string;
  keyType!: string;
  description: string | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const SshKeySchema = new EntitySchema<SshKey>({
  class: SshKey,
  tableName: 'ssh_keys',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string' },
    host: { type: 'string' },
    user: { type: 'string' },
    port: { type: 'integer' },
    privateKeySecret: { type: 'text' },
    publicKey: { type: 'text' },
    fingerprint: { type: 'string' },
    keyType: { type: 'string' },
    description: { type: 'text', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
