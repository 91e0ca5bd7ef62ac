import { Migration } from '@mikro-orm/migrations';

export class Migration20261203190000_repo_stats extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table repo_stats_history (
        id serial primary key,
        repo_id int not null references repos(id) on delete cascade,
        snapshot_count int not null,
        total_size bigint not null,
        total_file_count bigint not null,
        recorded_at timestamptz not null default now()
      )`);
    this.addSql('create index repo_stats_history_repo_id_recorded_at_index on repo_stats_history (repo_id, recorded_at desc)');
  }
}
