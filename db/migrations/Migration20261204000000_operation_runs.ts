import { Migration } from '@mikro-orm/migrations';

export class Migration20261204000000_operation_runs extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table operation_runs (
        id uuid primary key,
        kind varchar(32) not null check (kind in ('copy', 'repo_check', 'snapshot_delete', 'scheduler_task', 'maintenance')),
        status varchar(16) not null check (status in ('queued', 'running', 'success', 'failed')),
        trigger varchar(16) not null check (trigger in ('api', 'schedule')),
        workflow_id varchar(200) not null unique,
        job_id int null,
        repo_id int null,
        host_id int null,
        snapshot_id varchar(64) null,
        task_key varchar(64) null,
        params jsonb null,
        queued_at timestamptz not null default now(),
        started_at timestamptz null,
        finished_at timestamptz null,
        result jsonb null,
        warnings jsonb not null default '[]',
        failure_code varchar(64) null,
        failure_message text null,
        attempts int not null default 0,
        requested_by_user_id int null,
        requested_by_token_id int null
      )`);
    // The database refuses a second active run of the same thing: a check per repository, a
    // deletion per snapshot, a run per copy job, a run per scheduler task.
    this.addSql(`create unique index operation_runs_one_active on operation_runs (kind, coalesce(job_id, 0), coalesce(repo_id, 0), coalesce(snapshot_id, ''), coalesce(task_key, '')) where status in ('queued', 'running')`);
    // No foreign keys: run history outlives the repository or job it worked on.
    this.addSql('create index operation_runs_repo_id_queued_at_index on operation_runs (repo_id, queued_at desc)');
    this.addSql('create index operation_runs_queued_at_index on operation_runs (queued_at desc)');
  }
}
