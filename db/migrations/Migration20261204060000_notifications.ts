import { Migration } from '@mikro-orm/migrations';

export class Migration20261204060000_notifications extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table backup_jobs add column notification_policy jsonb null');
    this.addSql(`
      create table app_notifications (
        id serial primary key,
        user_id int not null references users(id) on delete cascade,
        profile_key varchar(32) not null,
        event_key varchar(32) not null,
        context_type varchar(32) null,
        context_id int null,
        context_name text null,
        repo_id int null,
        host_id int null,
        title text not null,
        body text not null,
        severity varchar(16) not null,
        link_url text null,
        browser_delivery boolean not null default false,
        is_read boolean not null default false,
        created_at timestamptz not null default now(),
        read_at timestamptz null
      )`);
    this.addSql('create index app_notifications_user_id_index on app_notifications (user_id, id desc)');
    // Every notifiable occurrence, sent or throttled: what throttling reads.
    this.addSql(`
      create table notification_log (
        id bigserial primary key,
        event_id bigint null references events(id) on delete set null,
        profile_key varchar(32) not null,
        event_key varchar(32) not null,
        context_type varchar(32) not null,
        context_id int not null,
        channels text null,
        outcome varchar(16) not null check (outcome in ('sent', 'throttled', 'no_channel', 'no_recipient')),
        recipients int not null default 0,
        created_at timestamptz not null default now()
      )`);
    // One message to one external channel (email, chat, generic webhook), sent by its own workflow.
    this.addSql(`
      create table notification_deliveries (
        id serial primary key,
        event_id bigint null references events(id) on delete set null,
        channel varchar(16) not null,
        message jsonb not null,
        state varchar(16) not null default 'pending' check (state in ('pending', 'delivered', 'failed')),
        attempts int not null default 0,
        error text null,
        workflow_started boolean not null default false,
        created_at timestamptz not null default now(),
        delivered_at timestamptz null
      )`);
    this.addSql('create index notification_deliveries_unstarted_index on notification_deliveries (id) where not workflow_started');
    this.addSql('create index notification_log_context_index on notification_log (profile_key, context_type, context_id, created_at desc)');
  }
}
