import { Migration } from '@mikro-orm/migrations';

export class Migration20261204020000_hooks extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table backup_jobs add column pre_hook_command jsonb null, add column post_hook_command jsonb null');
    this.addSql('alter table backup_job_runs add column hooks jsonb null');
  }
}
