import { Migration } from '@mikro-orm/migrations';

export class Migration20261204110000_activity_log_token extends Migration {
  override async up(): Promise<void> {
    // The token an entry was made through: a token limited to some repositories or hosts reads
    // only its own entries, not those its user made through wider tokens.
    this.addSql('alter table activity_logs add column token_id int null');
    this.addSql('create index activity_logs_token_id_index on activity_logs (token_id, created_at desc)');
  }
}
