import { Migration } from '@mikro-orm/migrations';

export class Migration20261204100000_one_active_run_per_job extends Migration {
  override async up(): Promise<void> {
    // A job's runs are one at a time whatever repository each reads: the repository of a copy job
    // can change while one of its runs is going. Runs of no job keep their own targets.
    this.addSql('drop index operation_runs_one_active');
    this.addSql(`create unique index operation_runs_one_active_per_job on operation_runs (kind, job_id) where job_id is not null and status in ('queued', 'running')`);
    this.addSql(`create unique index operation_runs_one_active on operation_runs (kind, coalesce(repo_id, 0), coalesce(snapshot_id, ''), coalesce(task_key, '')) where job_id is null and status in ('queued', 'running')`);
  }
}
