import { Migration } from '@mikro-orm/migrations';

export class Migration20261204040000_restores extends Migration {
  override async up(): Promise<void> {
    // No foreign keys: a restore's history outlives its repository and host (names are kept).
    this.addSql(`
      create table restores (
        id serial primary key,
        repo_id int not null,
        repo_name varchar(255) not null,
        snapshot_id varchar(64) not null,
        host_id int null,
        host_name varchar(255) null,
        destination_mode varchar(16) not null check (destination_mode in ('managed', 'original')),
        append_context_subdir boolean not null,
        include jsonb not null default '[]',
        mode varchar(64) not null,
        resolved_target text null,
        status varchar(16) not null check (status in ('queued', 'running', 'success', 'failed')),
        trigger varchar(16) not null check (trigger in ('api')),
        started_by varchar(255) not null,
        workflow_id varchar(200) not null unique,
        queued_at timestamptz not null default now(),
        started_at timestamptz null,
        finished_at timestamptz null,
        output text null,
        summary jsonb null,
        warnings jsonb not null default '[]',
        failure_code varchar(64) null,
        failure_message text null,
        attempts int not null default 0,
        requested_by_user_id int null,
        requested_by_token_id int null
      )`);
    this.addSql('create index restores_repo_id_queued_at_index on restores (repo_id, queued_at desc)');
    this.addSql('create index restores_queued_at_index on restores (queued_at desc)');
  }
}
