import { Migration } from '@mikro-orm/migrations';

export class Migration20261204070000_users extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table users
        add column phone varchar(40) null,
        add column job_title varchar(120) null,
        add column preferred_locale varchar(8) not null default 'en',
        add column preferred_timezone varchar(64) null,
        add column preferred_start_page varchar(64) null,
        add column suspension_reason varchar(500) null`);
    // "admin" and "Admin" would be two accounts a reader cannot tell apart.
    this.addSql('create unique index users_username_lower_unique on users (lower(username))');
  }
}
