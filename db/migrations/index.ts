import { Migration20261203000000_initial } from './Migration20261203000000_initial';
import { Migration20261203120000_security } from './Migration20261203120000_security';
import { Migration20261203190000_repo_stats } from './Migration20261203190000_repo_stats';
import { Migration20261204000000_operation_runs } from './Migration20261204000000_operation_runs';
import { Migration20261204010000_retention } from './Migration20261204010000_retention';
import { Migration20261204020000_hooks } from './Migration20261204020000_hooks';
import { Migration20261204030000_copy_jobs } from './Migration20261204030000_copy_jobs';
import { Migration20261204040000_restores } from './Migration20261204040000_restores';
import { Migration20261204050000_webhooks } from './Migration20261204050000_webhooks';
import { Migration20261204060000_notifications } from './Migration20261204060000_notifications';
import { Migration20261204070000_users } from './Migration20261204070000_users';
import { Migration20261204080000_activity_log } from './Migration20261204080000_activity_log';
import { Migration20261204090000_schedules } from './Migration20261204090000_schedules';
import { Migration20261204100000_one_active_run_per_job } from './Migration20261204100000_one_active_run_per_job';
import { Migration20261204110000_activity_log_token } from './Migration20261204110000_activity_log_token';

/** Every migration, in order; listed explicitly so bundlers and test runners need no file discovery. */
export const migrationsList = [
  { name: 'Migration20261203000000_initial', class: Migration20261203000000_initial },
  { name: 'Migration20261203120000_security', class: Migration20261203120000_security },
  { name: 'Migration20261203190000_repo_stats', class: Migration20261203190000_repo_stats },
  { name: 'Migration20261204000000_operation_runs', class: Migration20261204000000_operation_runs },
  { name: 'Migration20261204010000_retention', class: Migration20261204010000_retention },
  { name: 'Migration20261204020000_hooks', class: Migration20261204020000_hooks },
  { name: 'Migration20261204030000_copy_jobs', class: Migration20261204030000_copy_jobs },
  { name: 'Migration20261204040000_restores', class: Migration20261204040000_restores },
  { name: 'Migration20261204050000_webhooks', class: Migration20261204050000_webhooks },
  { name: 'Migration20261204060000_notifications', class: Migration20261204060000_notifications },
  { name: 'Migration20261204070000_users', class: Migration20261204070000_users },
  { name: 'Migration20261204080000_activity_log', class: Migration20261204080000_activity_log },
  { name: 'Migration20261204090000_schedules', class: Migration20261204090000_schedules },
  { name: 'Migration20261204100000_one_active_run_per_job', class: Migration20261204100000_one_active_run_per_job },
  { name: 'Migration20261204110000_activity_log_token', class: Migration20261204110000_activity_log_token },
];
