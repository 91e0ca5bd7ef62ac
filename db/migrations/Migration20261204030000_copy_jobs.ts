import { Migration } from '@mikro-orm/migrations';

export class Migration20261204030000_copy_jobs extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table copy_jobs (
        id serial primary key,
        name varchar(120) not null,
        source_repo_id int not null references repos(id) on delete restrict,
        dest_path text not null,
        dest_host_id int null references hosts(id) on delete restrict,
        dest_password_secret text null,
        dest_password_source varchar(16) not null default 'local' check (dest_password_source in ('local', 'agent', 'infisical')),
        dest_infisical_secret_name varchar(256) null,
        rclone_config_secret text null,
        init_destination boolean not null default false,
        filter_hosts jsonb not null default '[]',
        filter_tags jsonb not null default '[]',
        description text null,
        schedule_enabled boolean not null default false,
        schedule_hour int not null default 2 check (schedule_hour between 0 and 23),
        schedule_days varchar(32) not null default '1',
        notification_policy jsonb null,
        retry_policy jsonb null,
        last_run timestamptz null,
        last_status varchar(16) null check (last_status in ('running', 'success', 'failed')),
        last_run_id uuid null,
        last_error text null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql('create index copy_jobs_source_repo_id_index on copy_jobs (source_repo_id)');
  }
}
