import type { EntityManager } from '@mikro-orm/postgresql';
import { createTransport } from 'nodemailer';
import { resolveTarget } from '../common/outbound-target';
import { readSettings, type SettingKey } from '../common/settings';
import type { NotificationMessage } from '../db/entities';
import { type SecretBox, SecretPurpose } from '../db/secret-box';
import { postBody } from './webhook-http';

const SEND_TIMEOUT_MS = 15_000;

const CHANNEL_KEYS = [
  'notify_email_smtp_host', 'notify_email_smtp_port', 'notify_email_smtp_tls', 'notify_email_smtp_require_starttls', 'notify_email_smtp_user', 'notify_email_smtp_password',
  'notify_email_from', 'notify_email_to', 'notify_webhook_url', 'notify_webhook_token', 'notify_slack_webhook_url',
  'notify_discord_webhook_url', 'notify_teams_webhook_url', 'notify_gotify_url', 'notify_gotify_token', 'notify_ntfy_url',
  'notify_ntfy_token', 'notify_telegram_bot_token', 'notify_telegram_chat_id', 'notify_telegram_api_url', 'app_name',
  'webhook_allow_private_targets',
] as const satisfies readonly SettingKey[];

type ChannelSettings = Awaited<ReturnType<typeof channelSettings>>;

const channelSettings = (em: EntityManager) => readSettings(em, CHANNEL_KEYS);

/** The external channels whose settings are filled in: the others are skipped, not failed. */
export async function configuredChannels(em: EntityManager): Promise<Set<string>> {
  const s = await channelSettings(em);
  const configured: [string, boolean][] = [
    ['email', Boolean(s.notify_email_smtp_host && s.notify_email_from && s.notify_email_to.length > 0)],
    ['webhook', Boolean(s.notify_webhook_url)],
    ['slack', Boolean(s.notify_slack_webhook_url)],
    ['discord', Boolean(s.notify_discord_webhook_url)],
    ['teams', Boolean(s.notify_teams_webhook_url)],
    ['gotify', Boolean(s.notify_gotify_url && s.notify_gotify_token)],
    ['ntfy', Boolean(s.notify_ntfy_url)],
    ['telegram', Boolean(s.notify_telegram_bot_token && s.notify_telegram_chat_id)],
  ];
  return new Set(configured.filter(([, on]) => on).map(([channel]) => channel));
}

interface HttpMessage {
  url: string;
  body: Buffer;
  headers: Record<string, string>;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const PRIORITY: Record<string, number> = { error: 8, critical: 10, warning: 5, success: 2, info: 2 };

/** The request a chat or webhook channel expects for a message, in that service's format. */
function httpMessage(channel: string, m: NotificationMessage, s: ChannelSettings, open: (sealed: string) => string): HttpMessage {
  const text = `${m.title}\n${m.body}${m.link ? `\n${m.link}` : ''}`;
  switch (channel) {
    case 'webhook':
      return {
        url: open(s.notify_webhook_url),
        headers: s.notify_webhook_token ? { Authorization: `Bearer ${open(s.notify_webhook_token)}` } : {},
        body: json({
          app: s.app_name, title: m.title, body: text, plain_body: m.body, profile: m.profile, event: m.event, severity: m.severity,
          context_type: m.contextType, context_id: m.contextId, context_name: m.contextName, link_url: m.link, log_content: m.body, created_at: m.createdAt,
        }),
      };
    case 'slack':
      return { url: open(s.notify_slack_webhook_url), headers: {}, body: json({ text: `*${m.title}*\n${m.body}${m.link ? `\n${m.link}` : ''}` }) };
    case 'discord':
      return { url: open(s.notify_discord_webhook_url), headers: {}, body: json({ content: `**${m.title}**\n${m.body}`.slice(0, 2000) }) };
    case 'teams':
      return {
        url: open(s.notify_teams_webhook_url), headers: {},
        body: json({ '@type': 'MessageCard', '@context': 'https://schema.org/extensions', summary: m.title, title: m.title, text: m.body }),
      };
    case 'gotify':
      return {
        url: `${s.notify_gotify_url.replace(/\/$/, '')}/message`, headers: { 'X-Gotify-Key': open(s.notify_gotify_token) },
        body: json({ title: m.title, message: m.body, priority: PRIORITY[m.severity] ?? 5 }),
      };
    case 'ntfy':
      return {
        url: s.notify_ntfy_url,
        headers: {
          'Content-Type': 'text/plain; charset=utf-8', Title: encodeURIComponent(m.title), Priority: m.severity === 'error' ? 'high' : 'default',
          Tags: m.severity, ...(s.notify_ntfy_token ? { Authorization: `Bearer ${open(s.notify_ntfy_token)}` } : {}), ...(m.link ? { Click: m.link } : {}),
        },
        body: Buffer.from(m.body),
      };
    case 'telegram':
      return {
        url: `${s.notify_telegram_api_url.replace(/\/$/, '')}/bot${open(s.notify_telegram_bot_token)}/sendMessage`, headers: {},
        body: json({ chat_id: s.notify_telegram_chat_id, text: text.slice(0, 4096), disable_web_page_preview: true }),
      };
    default:
      throw new Error(`unknown channel ${channel}`);
  }
}

/** Sends one message to one channel; throws (to be retried) when the channel does not take it. */
export async function sendToChannel(em: EntityManager, secrets: SecretBox, channel: string, message: NotificationMessage): Promise<void> {
  const s = await channelSettings(em);
  const open = (sealed: string) => secrets.open(sealed, SecretPurpose.setting);
  if (channel === 'email') {
    const transport = createTransport({
      host: s.notify_email_smtp_host, port: s.notify_email_smtp_port, secure: s.notify_email_smtp_tls,
      requireTLS: !s.notify_email_smtp_tls && s.notify_email_smtp_require_starttls,
      auth: s.notify_email_smtp_user ? { user: s.notify_email_smtp_user, pass: s.notify_email_smtp_password ? open(s.notify_email_smtp_password) : '' } : undefined,
      connectionTimeout: SEND_TIMEOUT_MS, greetingTimeout: SEND_TIMEOUT_MS, socketTimeout: SEND_TIMEOUT_MS,
    });
    try {
      await transport.sendMail({
        from: s.notify_email_from, to: s.notify_email_to, subject: `[${s.app_name}] ${message.title}`,
        text: `${message.body}${message.link ? `\n\n${message.link}` : ''}\n`,
      });
    } finally {
      transport.close();
    }
    return;
  }
  const request = httpMessage(channel, message, s, open);
  const target = await resolveTarget(request.url, s.webhook_allow_private_targets);
  const result = await postBody(target, request.body, request.headers, SEND_TIMEOUT_MS);
  // The URL may hold the channel's token: errors name the channel, not the URL.
  if (result.error !== null || result.status < 200 || result.status >= 300) throw new Error(`the ${channel} channel answered: ${result.error ?? `HTTP ${result.status}`}`);
}
