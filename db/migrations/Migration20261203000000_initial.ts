import { Migration } from '@mikro-orm/migrations';

export class Migration20261203000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table users (
        id serial primary key,
        username varchar(64) not null unique,
        password_hash text null,
        role varchar(32) not null default 'viewer',
        email varchar(255) null,
        first_name varchar(120) null,
        last_name varchar(120) null,
        permissions jsonb null,
        repo_scope_mode varchar(16) not null default 'all' check (repo_scope_mode in ('all', 'selected')),
        repo_scope_ids jsonb not null default '[]',
        host_scope_mode varchar(16) not null default 'all' check (host_scope_mode in ('all', 'selected')),
        host_scope_ids jsonb not null default '[]',
        enabled boolean not null default true,
        suspended_until timestamptz null,
        account_expires_at timestamptz null,
        last_login_at timestamptz null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table api_tokens (
        id serial primary key,
        user_id int not null references users(id) on delete cascade,
        name varchar(120) not null,
        prefix char(8) not null,
        token_hash char(64) not null unique,
        scopes jsonb not null,
        read_only boolean not null default false,
        allowed_ips jsonb not null default '[]',
        allowed_origins jsonb not null default '[]',
        rate_limit_per_minute int not null default 120,
        expires_at timestamptz null,
        last_used_at timestamptz null,
        last_used_ip varchar(64) null,
        revoked_at timestamptz null,
        revoked_reason text null,
        created_at timestamptz not null default now()
      )`);
    this.addSql('create index api_tokens_user_id_index on api_tokens (user_id)');
    this.addSql(`
      create table ssh_keys (
        id serial primary key,
        name varchar(120) not null,
        host varchar(253) not null,
        "user" varchar(64) not null default 'root',
        port int not null default 22,
        private_key_secret text not null,
        public_key text not null,
        fingerprint varchar(64) not null,
        key_type varchar(64) not null,
        description text null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table hosts (
        id serial primary key,
        name varchar(120) not null,
        hostname varchar(253) not null,
        port int not null default 22,
        "user" varchar(64) not null default 'root',
        ssh_key_id int null references ssh_keys(id) on delete restrict,
        description text null,
        restore_managed_root text null,
        restore_original_enabled boolean not null default false,
        sudo_password_secret text null,
        restic_path text not null default 'restic',
        host_key_fingerprint varchar(64) null,
        host_key_type varchar(64) null,
        host_public_key text null,
        host_key_pinned_at timestamptz null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table repos (
        id serial primary key,
        name varchar(120) not null,
        path text not null,
        password_secret text null,
        password_source varchar(16) not null default 'local',
        description text null,
        alert_hours int not null default 25,
        notify_email varchar(255) null,
        notification_policy jsonb null,
        ssh_host_id int null references hosts(id) on delete restrict,
        snapshots_refreshed_at timestamptz null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table backup_jobs (
        id serial primary key,
        name varchar(120) not null,
        repo_id int not null references repos(id) on delete restrict,
        host_id int null references hosts(id) on delete restrict,
        source_paths jsonb not null,
        tags jsonb not null default '[]',
        excludes jsonb not null default '[]',
        description text null,
        schedule_enabled boolean not null default false,
        schedule_hour smallint not null default 2 check (schedule_hour between 0 and 23),
        schedule_days varchar(32) not null default '1',
        notify_on_failure boolean not null default true,
        remote_repo_path text null,
        hostname_override varchar(253) null,
        last_run timestamptz null,
        last_status varchar(16) null check (last_status in ('running', 'success', 'failed')),
        last_run_id uuid null,
        last_snapshot_id varchar(64) null,
        last_error text null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql('create index backup_jobs_repo_id_index on backup_jobs (repo_id)');
    this.addSql('create index backup_jobs_host_id_index on backup_jobs (host_id)');
    this.addSql(`
      create table backup_job_runs (
        id uuid primary key,
        job_id int not null,
        repo_id int not null,
        host_id int null,
        status varchar(16) not null check (status in ('queued', 'running', 'success', 'failed')),
        trigger varchar(16) not null check (trigger in ('api', 'schedule')),
        workflow_id varchar(200) not null unique,
        queued_at timestamptz not null default now(),
        started_at timestamptz null,
        finished_at timestamptz null,
        snapshot_id varchar(64) null,
        summary jsonb null,
        warnings jsonb not null default '[]',
        failure_code varchar(64) null,
        failure_message text null,
        attempts int not null default 0,
        requested_by_user_id int null,
        requested_by_token_id int null
      )`);
    // At most one queued or running run per job: the database refuses a parallel trigger.
    this.addSql(`create unique index backup_job_runs_one_active_per_job on backup_job_runs (job_id) where status in ('queued', 'running')`);
    // No foreign key to the job: run history outlives a deleted job.
    this.addSql('create index backup_job_runs_job_id_queued_at_index on backup_job_runs (job_id, queued_at desc)');
    this.addSql(`
      create table snapshots (
        repo_id int not null references repos(id) on delete cascade,
        id char(64) not null,
        short_id varchar(16) not null,
        time timestamptz not null,
        time_text varchar(64) not null,
        tree char(64) not null,
        parent char(64) null,
        paths jsonb not null,
        hostname varchar(253) not null,
        username varchar(255) not null,
        uid int null,
        gid int null,
        excludes jsonb null,
        tags jsonb not null default '[]',
        program_version varchar(64) null,
        summary jsonb null,
        primary key (repo_id, id)
      )`);
    this.addSql('create index snapshots_repo_id_time_index on snapshots (repo_id, time desc)');
  }

  override async down(): Promise<void> {
    for (const table of ['snapshots', 'backup_job_runs', 'backup_jobs', 'repos', 'hosts', 'ssh_keys', 'api_tokens', 'users']) {
      this.addSql(`drop table if exists ${table} cascade`);
    }
  }
}
