import { Migration } from '@mikro-orm/migrations';

export class Migration20261203120000_security extends Migration {
  override async up(): Promise<void> {
    // Per-token resource scope: a token can only narrow what its user may reach.
    this.addSql(`
      alter table api_tokens
        add column repo_scope_mode varchar(16) not null default 'all' check (repo_scope_mode in ('all', 'selected')),
        add column repo_scope_ids jsonb not null default '[]',
        add column host_scope_mode varchar(16) not null default 'all' check (host_scope_mode in ('all', 'selected')),
        add column host_scope_ids jsonb not null default '[]',
        add column created_by_token_id int null references api_tokens(id) on delete set null,
        add column rate_budget_token_id int null references api_tokens(id) on delete set null`);
    this.addSql(`
      create table settings (
        key varchar(64) primary key,
        value jsonb not null,
        updated_at timestamptz not null default now()
      )`);
    // Hits per subject (a token, or an IP's failed logins) and second: the sliding minute is a sum.
    this.addSql(`
      create table api_rate_hits (
        subject varchar(80) not null,
        second bigint not null,
        hits int not null,
        primary key (subject, second)
      )`);
    // One hit for a subject, counted strictly: the advisory lock serialises a subject's hits, and
    // each statement of a volatile function sees what committed before it, so concurrent
    // requests (in any API process, across second boundaries) never both take the last slot.
    // Refused hits are not stored. One round trip per request.
    this.addSql(`
      create function take_rate_hit(p_subject varchar, p_second bigint, p_window int, p_limit int)
        returns table (used bigint, oldest bigint, taken boolean)
        language plpgsql volatile as $$
      begin
        perform pg_advisory_xact_lock(hashtext(p_subject));
        select coalesce(sum(h.hits), 0), min(h.second) into used, oldest
          from api_rate_hits h where h.subject = p_subject and h.second > p_second - p_window;
        taken := used < p_limit;
        if taken then
          insert into api_rate_hits (subject, second, hits) values (p_subject, p_second, 1)
            on conflict (subject, second) do update set hits = api_rate_hits.hits + 1;
        end if;
        delete from api_rate_hits h where h.subject = p_subject and h.second <= p_second - p_window;
        return next;
      end $$`);
    // No foreign key to api_tokens: the audit log outlives the tokens it mentions.
    this.addSql(`
      create table api_token_logs (
        id bigserial primary key,
        token_id int null,
        user_id int null,
        method varchar(10) not null,
        endpoint varchar(255) not null,
        status int not null,
        ip varchar(64) null,
        user_agent varchar(255) null,
        latency_ms int not null,
        error varchar(64) null,
        created_at timestamptz not null default now()
      )`);
    this.addSql('create index api_token_logs_created_at_index on api_token_logs (created_at desc, id desc)');
    this.addSql('create index api_token_logs_token_id_index on api_token_logs (token_id, created_at desc)');
    this.addSql(`
      create table api_idempotency_keys (
        id bigserial primary key,
        token_id int not null references api_tokens(id) on delete cascade,
        idempotency_key varchar(255) not null,
        fingerprint char(64) not null,
        method varchar(10) not null,
        endpoint varchar(2048) not null,
        response_status int null,
        response_body text null,
        response_location varchar(2048) null,
        created_at timestamptz not null default now(),
        completed_at timestamptz null,
        unique (token_id, idempotency_key)
      )`);
    this.addSql('create index api_idempotency_keys_created_at_index on api_idempotency_keys (created_at)');
    // Outbox of domain events (api_token.created, ...), delivered to webhooks by the worker.
    this.addSql(`
      create table events (
        id bigserial primary key,
        type varchar(64) not null,
        payload jsonb not null,
        created_at timestamptz not null default now()
      )`);
  }
}
