import { EntitySchema, type Opt } from '@mikro-orm/core';
import { SshKey } from './ssh-key';

export class Host {
  id!: number;
  name!: string;
  hostname!: string;
  port: Opt<number> = 22;
  user: Opt<string> = 'root';
  sshKey: SshKey | null = null;
  description: string | null = null;
  restoreManagedRoot: string | null = null;
  restoreOriginalEnabled: Opt<boolean> = false;
  sudoPasswordSecret: string | null = null;
  resticPath: Opt<string> = 'restic';
  /** The pinned host key: set from the first successful test, or given up front. */
  hostKeyFingerprint: string | null = null;
  hostKeyType: string | null = null;
  /** The pinned key itself (base64 blob), for known_hosts files handed to OpenSSH. */
  hostPublicKey: string | null = null;
  hostKeyPinnedAt: Date | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const HostSchema = new EntitySchema<Host>({
  class: Host,
  tableName: 'hosts',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string' },
    hostname: { type: 'string' },
    port: { type: 'integer' },
    user: { type: 'string' },
    sshKey: { kind: 'm:1', entity: () => SshKey, nullable: true, deleteRule: 'restrict' },
    description: { type: 'text', nullable: true },
    restoreManagedRoot: { type: 'text', nullable: true },
    restoreOriginalEnabled: { type: 'boolean' },
    sudoPasswordSecret: { type: 'text', nullable: true },
    resticPath: { type: 'text' },
    hostKeyFingerprint: { type: 'string', nullable: true },
    hostKeyType: { type: 'string', nullable: true },
    hostPublicKey: { type: 'text', nullable: true },
    hostKeyPinnedAt: { type: 'Date', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
