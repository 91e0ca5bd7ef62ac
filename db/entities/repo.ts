import { EntitySchema, OptionalProps, type Opt } from '@mikro-orm/core';
import { Host } from './host';

export type PasswordSource = 'local' | 'agent' | 'infisical';

export class Repo {
  [OptionalProps]?: 'notificationPolicy';
  id!: number;
  name!: string;
  /** A local path or any restic backend string (`sftp:user@host:/path`, `rclone:remote:path`, ...). */
  path!: string;
  passwordSecret: string | null = null;
  passwordSource: Opt<PasswordSource> = 'local';
  description: string | null = null;
  alertHours: Opt<number> = 25;
  notifyEmail: string | null = null;
  notificationPolicy: Record<string, unknown> | null = null;
  /** For `sftp:` repositories: the host whose key and pinned host key reach it. */
  sshHost: Host | null = null;
  snapshotsRefreshedAt: Date | null = null;
  createdAt: Opt<Date> = new Date();
  updatedAt: Opt<Date> = new Date();
}

export const RepoSchema = new EntitySchema<Repo>({
  class: Repo,
  tableName: 'repos',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string' },
    path: { type: 'text' },
    passwordSecret: { type: 'text', nullable: true },
    passwordSource: { type: 'string' },
    description: { type: 'text', nullable: true },
    alertHours: { type: 'integer' },
    notifyEmail: { type: 'string', nullable: true },
    notificationPolicy: { type: 'json', nullable: true },
    sshHost: { kind: 'm:1', entity: () => Host, nullable: true, deleteRule: 'restrict' },
    snapshotsRefreshedAt: { type: 'Date', nullable: true },
    createdAt: { type: 'Date' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
