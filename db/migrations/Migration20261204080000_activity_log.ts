import { Migration } from '@mikro-orm/migrations';

export class Migration20261204080000_activity_log extends Migration {
  override async up(): Promise<void> {
    // No foreign key to users: the log outlives the accounts it names.
    this.addSql(`
      create table activity_logs (
        id bigserial primary key,
        user_id int null,
        username varchar(64) not null,
        action varchar(120) not null,
        severity varchar(16) not null check (severity in ('info', 'warning', 'critical')),
        details jsonb null,
        ip varchar(64) null,
        user_agent varchar(255) null,
        request_id varchar(128) null,
        created_at timestamptz not null default now()
      )`);
    this.addSql('create index activity_logs_created_at_index on activity_logs (created_at desc, id desc)');
    this.addSql('create index activity_logs_user_id_index on activity_logs (user_id, created_at desc)');
    // The repository runtime status reads the latest finished run of each job by repository.
    this.addSql('create index backup_job_runs_repo_id_job_id_index on backup_job_runs (repo_id, job_id, finished_at desc)');
  }
}
