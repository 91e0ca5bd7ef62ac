import type { EntityManager } from '@mikro-orm/postgresql';
import { Setting } from '../db/entities';
import { managedRootProblem } from './restore-roots';

/** `secret`: a string stored sealed and never shown (reads give `********` once it is set). */
export type SettingType = 'string' | 'integer' | 'boolean' | 'string_list' | 'secret';

interface SettingSpec {
  type: SettingType;
  default: string | number | boolean | string[];
  description: string;
  min?: number;
  max?: number;
  /** For strings and list items: the pattern a value must match. */
  pattern?: RegExp;
  patternHint?: string;
  /** For strings: a further check, saying why a value is refused (null: accepted). */
  check?: (value: string) => string | null;
}

const ORIGIN = /^(\*|https?:\/\/[^/\s]+)$/;
/** An absolute path in normal form: no `//`, `.` or `..` segments, no trailing slash, no control characters. */
const ABSOLUTE_PATH = /^\/(?!.*\/\/)(?!(?:.*\/)?\.{1,2}(?:\/|$))(?!.+\/$)[^\u0000-\u001f\u007f]*$/;
const CHANNEL = /^(email|discord|slack|telegram|ntfy|webhook|teams|gotify|in_app|web_push)$/;
const DIRECTORY = { pattern: ABSOLUTE_PATH, patternHint: 'an absolute path in normal form' };
const day = (description: string): SettingSpec => ({ type: 'integer', default: 1, min: 1, max: 7, description });
const hour = (description: string, value: number): SettingSpec => ({ type: 'integer', default: value, min: 0, max: 23, description });

/** Settings exposed through the API: any other key is unknown. */
export const SETTINGS = {
  app_name: { type: 'string', default: 'Backup Control Plane', description: 'Display name of the instance.' },
  app_url: { type: 'string', default: '', description: 'Public base URL of the instance (empty = unset).', pattern: /^(|https?:\/\/\S+)$/, patternHint: 'an http(s) URL or empty' },
  timezone: { type: 'string', default: 'UTC', description: 'IANA time zone of schedules.' },
  server_timezone: { type: 'string', default: 'UTC', description: 'IANA time zone of the server.' },
  cron_run_minute: { type: 'integer', default: 0, min: 0, max: 59, description: 'Minute past the hour at which hourly schedules fire.' },
  api_enabled: { type: 'boolean', default: true, description: 'Global switch of /api/v1.' },
  api_default_token_lifetime_days: { type: 'integer', default: 90, min: 0, max: 3650, description: 'Lifetime of new tokens created without expires_at (0 = never expire).' },
  api_default_rate_limit_per_minute: { type: 'integer', default: 120, min: 0, max: 100000, description: 'Rate limit of new tokens created without rate_limit_per_minute (0 = none).' },
  api_log_retention_days: { type: 'integer', default: 30, min: 1, max: 3650, description: 'Retention of the API audit log.' },
  api_idempotency_retention_hours: { type: 'integer', default: 48, min: 1, max: 8760, description: 'How long idempotency keys and their responses are kept.' },
  api_cors_allowed_origins: { type: 'string_list', default: [], description: 'Global CORS allow-list.', pattern: ORIGIN, patternHint: 'an http(s)://host[:port] origin or *' },
  weekly_report_enabled: { type: 'boolean', default: false, description: 'Enable the weekly report task.' },
  weekly_report_day: day('Day of the weekly report (1 = Monday ... 7 = Sunday).'),
  weekly_report_hour: hour('Hour of the weekly report.', 8),
  integrity_check_enabled: { type: 'boolean', default: false, description: 'Enable the scheduled integrity check of all repositories.' },
  integrity_check_day: day('Day of the integrity check (1 = Monday ... 7 = Sunday).'),
  integrity_check_hour: hour('Hour of the integrity check.', 3),
  maintenance_vacuum_enabled: { type: 'boolean', default: false, description: 'Enable the database maintenance task.' },
  maintenance_vacuum_day: day('Day of the maintenance task (1 = Monday ... 7 = Sunday).'),
  maintenance_vacuum_hour: hour('Hour of the maintenance task.', 4),
  schedule_absence_grace_minutes: {
    type: 'integer', default: 60, min: 5, max: 10080,
    description: 'How long after its due time a scheduled run may take to succeed before the job is reported missed.',
  },
  run_history_retention_days: { type: 'integer', default: 365, min: 7, max: 3650, description: 'Retention of finished runs, restores, events and cron log entries (a job keeps its latest run).' },
  notification_retention_days: { type: 'integer', default: 90, min: 1, max: 3650, description: 'Retention of read in-app notifications and of the notification log.' },
  hook_allowed_commands: {
    type: 'string_list', default: [], pattern: /^\/[^\s]+$/, patternHint: 'an absolute path without spaces',
    description: 'Programs backup jobs may run as pre and post hooks (absolute paths; empty = no hooks).',
  },
  restore_managed_local_root: {
    type: 'string', default: '/var/tmp/fulgurite-restores', ...DIRECTORY, check: managedRootProblem,
    description: 'Directory managed restores onto the control plane go under.',
  },
  restore_managed_remote_root: {
    type: 'string', default: '/var/tmp/fulgurite-restores', ...DIRECTORY, check: managedRootProblem,
    description: "Directory managed restores onto a host go under, unless the host sets its own restore_managed_root.",
  },
  restore_original_global_enabled: { type: 'boolean', default: false, description: 'Allow restores to the original location at all (each host must allow it too).' },
  restore_original_allowed_paths: {
    type: 'string_list', default: [], ...DIRECTORY,
    description: 'Paths a restore to the original location may write under (empty = none).',
  },
  notification_failure_channels: {
    type: 'string_list', default: ['in_app'], pattern: CHANNEL, patternHint: 'a notification channel',
    description: 'Channels of failure events whose job and repository policies inherit (the end of the inheritance chain).',
  },
  notification_success_channels: {
    type: 'string_list', default: [], pattern: CHANNEL, patternHint: 'a notification channel',
    description: 'Channels of success events whose job and repository policies inherit (empty: successes are not notified).',
  },
  notify_email_smtp_host: { type: 'string', default: '', description: 'SMTP server of the email channel (empty = no email channel).' },
  notify_email_smtp_port: { type: 'integer', default: 587, min: 1, max: 65535, description: 'Its port.' },
  notify_email_smtp_tls: { type: 'boolean', default: false, description: 'Connect with TLS from the start (port 465); otherwise with STARTTLS.' },
  notify_email_smtp_require_starttls: {
    type: 'boolean', default: true,
    description: 'Without notify_email_smtp_tls: refuse a server that does not offer STARTTLS (so a password never goes in clear). Off only for a trusted local relay.',
  },
  notify_email_smtp_user: { type: 'string', default: '', description: 'SMTP user (empty = no authentication).' },
  notify_email_smtp_password: { type: 'secret', default: '', description: 'SMTP password.' },
  notify_email_from: { type: 'string', default: '', description: 'Sender address of notification emails.' },
  notify_email_to: { type: 'string_list', default: [], description: 'Recipients of notification emails.' },
  notify_webhook_url: { type: 'secret', default: '', description: 'URL the generic webhook channel POSTs JSON to (kept secret: such URLs often carry a token).' },
  notify_webhook_token: { type: 'secret', default: '', description: 'Bearer token of the generic webhook channel (empty = none).' },
  notify_slack_webhook_url: { type: 'secret', default: '', description: 'Slack incoming webhook URL.' },
  notify_discord_webhook_url: { type: 'secret', default: '', description: 'Discord webhook URL.' },
  notify_teams_webhook_url: { type: 'secret', default: '', description: 'Microsoft Teams incoming webhook URL.' },
  notify_gotify_url: { type: 'string', default: '', description: 'Gotify server base URL.' },
  notify_gotify_token: { type: 'secret', default: '', description: 'Gotify application token.' },
  notify_ntfy_url: { type: 'string', default: '', description: 'ntfy topic URL (e.g. https://ntfy.sh/my-backups).' },
  notify_ntfy_token: { type: 'secret', default: '', description: 'ntfy access token (empty = none).' },
  notify_telegram_bot_token: { type: 'secret', default: '', description: 'Telegram bot token.' },
  notify_telegram_chat_id: { type: 'string', default: '', description: 'Telegram chat id.' },
  notify_telegram_api_url: { type: 'string', default: 'https://api.telegram.org', description: 'Telegram Bot API base URL.' },
  webhook_allow_private_targets: {
    type: 'boolean', default: false,
    description: 'Allow webhook URLs on private, loopback and link-local addresses, over http too, on any port (on-premise receivers).',
  },
  webhook_retry_hours: { type: 'integer', default: 72, min: 1, max: 720, description: 'How long a failing webhook delivery is retried.' },
  webhook_retry_initial_seconds: { type: 'integer', default: 10, min: 1, max: 3600, description: 'Delay before the first retry of a webhook delivery; each retry doubles it (at most an hour), with jitter.' },
  webhook_timeout_seconds: { type: 'integer', default: 10, min: 1, max: 60, description: 'Time limit of one webhook delivery attempt.' },
  api_webhook_store_response_body_debug: { type: 'boolean', default: false, description: 'Keep the first 4000 characters of webhook response bodies on their deliveries.' },
} satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K]['default'] extends infer D
  ? D extends string ? string : D extends number ? number : D extends boolean ? boolean : string[]
  : never;

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key);
}

/** Why `value` cannot be the value of `key`, or null when it can. */
export function settingValueProblem(key: SettingKey, value: unknown): string | null {
  const spec: SettingSpec = SETTINGS[key];
  switch (spec.type) {
    case 'boolean':
      return typeof value === 'boolean' ? null : 'must be a boolean';
    case 'integer':
      if (!Number.isInteger(value)) return 'must be an integer';
      if ((spec.min !== undefined && (value as number) < spec.min) || (spec.max !== undefined && (value as number) > spec.max)) {
        return `must be between ${spec.min} and ${spec.max}`;
      }
      return null;
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (spec.pattern && !spec.pattern.test(value)) return `must be ${spec.patternHint}`;
      if (spec.check?.(value)) return spec.check(value);
      if (key === 'timezone' && value === 'server') return null; // the server_timezone setting
      if (key.endsWith('timezone') && !canonicalTimeZone(value)) return 'must be an IANA time zone';
      return null;
    case 'secret':
      return typeof value === 'string' && value.length <= 4096 ? null : 'must be a string (empty to remove it)';
    case 'string_list':
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) return 'must be a list of strings';
      if (spec.pattern && !value.every((item) => spec.pattern?.test(item))) return `each item must be ${spec.patternHint}`;
      return null;
  }
}

/**
 * The tz database name of a time zone, or null if it is none. Names are matched in any letter
 * case, but Temporal (Go's time package) reads them only as the database writes them, so a zone
 * is stored in this form: `europe/paris` is `Europe/Paris`, and `US/Eastern` `America/New_York`.
 */
export function canonicalTimeZone(value: string): string | null {
  try {
    return new Intl.DateTimeFormat('en', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** The values of these settings, stored or default. */
export async function readSettings<K extends SettingKey>(em: EntityManager, keys: readonly K[]): Promise<{ [P in K]: SettingValue<P> }> {
  const rows = await em.getConnection().execute<{ key: string; value: unknown }[]>('select key, value from settings where key in (?)', [keys]);
  const stored = new Map(rows.map((row) => [row.key, row.value]));
  return Object.fromEntries(keys.map((key) => [key, stored.has(key) ? stored.get(key) : SETTINGS[key].default])) as { [P in K]: SettingValue<P> };
}

/** Stores a value (already checked with settingValueProblem); a time zone in its canonical form. */
export function writeSetting(em: EntityManager, key: SettingKey, value: unknown): Promise<Setting> {
  const zone = key.endsWith('timezone') && typeof value === 'string' ? canonicalTimeZone(value) : null;
  return em.upsert(Setting, { key, value: zone ?? value, updatedAt: new Date() });
}
