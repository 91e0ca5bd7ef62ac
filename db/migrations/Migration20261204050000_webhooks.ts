import { Migration } from '@mikro-orm/migrations';

export class Migration20261204050000_webhooks extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table webhooks (
        id serial primary key,
        name varchar(120) not null,
        url text not null,
        events jsonb not null,
        enabled boolean not null default true,
        secret_secret text not null,
        last_status int null,
        last_attempt_at timestamptz null,
        last_error text null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    // One row per (event, webhook): its exact body is kept, so every attempt sends the same bytes.
    this.addSql(`
      create table webhook_deliveries (
        id serial primary key,
        webhook_id int not null references webhooks(id) on delete cascade,
        guid uuid not null unique,
        event_id bigint null references events(id) on delete set null,
        event varchar(64) not null,
        body text not null,
        state varchar(16) not null default 'pending' check (state in ('pending', 'retrying', 'delivered', 'failed')),
        status int not null default 0,
        response text null,
        error text null,
        attempts int not null default 0,
        next_attempt_at timestamptz null,
        attempted_at timestamptz null,
        redelivery_of int null references webhook_deliveries(id) on delete set null,
        once boolean not null default false,
        workflow_started boolean not null default false,
        created_at timestamptz not null default now()
      )`);
    this.addSql('create index webhook_deliveries_webhook_id_index on webhook_deliveries (webhook_id, id desc)');
    this.addSql('create index webhook_deliveries_unstarted_index on webhook_deliveries (id) where not workflow_started');
    this.addSql(`
      create table webhook_delivery_attempts (
        id bigserial primary key,
        delivery_id int not null references webhook_deliveries(id) on delete cascade,
        attempt int not null,
        attempted_at timestamptz not null,
        status int not null,
        latency_ms int not null,
        error text null,
        unique (delivery_id, attempt)
      )`);
    // The relay hands each event to the webhooks subscribed to it once.
    this.addSql('alter table events add column relayed_at timestamptz null');
    this.addSql('create index events_unrelayed_index on events (id) where relayed_at is null');
  }
}
