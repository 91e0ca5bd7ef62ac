import { Migration } from '@mikro-orm/migrations';

export class Migration20261204090000_schedules extends Migration {
  override async up(): Promise<void> {
    for (const table of ['backup_jobs', 'copy_jobs']) {
      this.addSql(`
        alter table ${table}
          add column schedule_cron varchar(120) null,
          add column schedule_timezone varchar(64) null,
          add column schedule_jitter_seconds int not null default 0,
          add column schedule_overlap varchar(16) not null default 'skip' check (schedule_overlap in ('skip', 'buffer_one')),
          add column schedule_catchup_minutes int not null default 60,
          add column schedule_paused boolean not null default false,
          add column schedule_due_at timestamptz null,
          add column schedule_missed_at timestamptz null`);
    }
    this.addSql(`
      create table cron_log (
        id serial primary key,
        job_type varchar(32) not null,
        job_id int null,
        repo_id int null,
        host_id int null,
        status varchar(16) not null check (status in ('success', 'failed', 'skipped', 'error')),
        output text null,
        run_id varchar(64) null,
        workflow_id text null,
        ran_at timestamptz not null default now()
      )`);
    this.addSql('create index cron_log_ran_at_index on cron_log (ran_at desc, id desc)');
    // One entry per scheduled workflow: a retried activity does not write it twice.
    this.addSql('create unique index cron_log_workflow_id_unique on cron_log (workflow_id) where workflow_id is not null');
  }
}
