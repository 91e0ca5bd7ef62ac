import { Migration } from '@mikro-orm/migrations';

export class Migration20261204010000_retention extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table backup_jobs
        add column retention_enabled boolean not null default false,
        add column retention_keep_last int null check (retention_keep_last > 0),
        add column retention_keep_hourly int null check (retention_keep_hourly > 0),
        add column retention_keep_daily int null check (retention_keep_daily > 0),
        add column retention_keep_weekly int null check (retention_keep_weekly > 0),
        add column retention_keep_monthly int null check (retention_keep_monthly > 0),
        add column retention_keep_yearly int null check (retention_keep_yearly > 0),
        add column retention_keep_within varchar(32) null,
        add column retention_keep_tags jsonb not null default '[]',
        add column retention_prune boolean not null default true`);
    this.addSql('alter table backup_job_runs add column retention jsonb null');
  }
}
