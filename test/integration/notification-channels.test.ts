import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';
import { WebhookReceiver, type Received } from '../support/webhook-receiver';

/**
 * Every external notification channel against a real receiver on loopback: a real SMTP server
 * (smtp-server) for email, and HTTP receivers standing for Slack, Discord, Teams, Gotify, ntfy,
 * Telegram and a generic webhook. The notification comes from a real failed backup run.
 */
let h: Harness;
let dir: string;
let jobId: number;
const mails: { from: string; to: string[]; data: string; user: string; password: string }[] = [];
let smtp: SMTPServer;
const http: Record<string, WebhookReceiver> = {};
// Slack's stand-in refuses the first message: the channel is retried until it takes it.
const replies: Record<string, (n: number) => { status: number }> = { slack: (n) => ({ status: n === 0 ? 503 : 200 }) };

const secretSettings = (r: Record<string, WebhookReceiver>) => ({
  notify_webhook_url: `${r.webhook?.url}`,
  notify_webhook_token: 'generic-bearer-token',
  notify_slack_webhook_url: `${r.slack?.base}/services/T000/B000/slacksecret`,
  notify_discord_webhook_url: `${r.discord?.base}/api/webhooks/1/discordsecret`,
  notify_teams_webhook_url: `${r.teams?.base}/webhookb2/teamssecret`,
  notify_gotify_token: 'gotify-app-token',
  notify_ntfy_token: 'ntfy-token',
  notify_telegram_bot_token: '123456:telegram-bot-token',
  notify_email_smtp_password: 'smtp-password',
});

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-channels-'));
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'f'), 'x');
  for (const channel of ['webhook', 'slack', 'discord', 'teams', 'gotify', 'ntfy', 'telegram']) {
    http[channel] = new WebhookReceiver(replies[channel] ?? (() => ({ status: 200 })));
    await http[channel].listen();
  }
  smtp = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    onAuth: (auth, _session, callback) => callback(null, { user: `${auth.username}:${auth.password}` }),
    onData: (stream, session, callback) => {
      let data = '';
      stream.on('data', (chunk: Buffer) => (data += chunk.toString()));
      stream.on('end', () => {
        const [user = '', password = ''] = String(session.user).split(':');
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data, user, password });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const settings: Record<string, unknown> = {
    webhook_allow_private_targets: true,
    notification_failure_channels: ['email', 'webhook', 'slack', 'discord', 'teams', 'gotify', 'ntfy', 'telegram'],
    notify_email_smtp_host: '127.0.0.1',
    notify_email_smtp_port: (smtp.server.address() as AddressInfo).port,
    notify_email_smtp_user: 'mailer',
    // The test's SMTP server offers no STARTTLS: a local relay, trusted on loopback.
    notify_email_smtp_require_starttls: false,
    notify_email_from: 'backups@example.org',
    notify_email_to: ['ops@example.org', 'oncall@example.org'],
    notify_gotify_url: http.gotify?.base,
    notify_ntfy_url: `${http.ntfy?.base}/backups`,
    notify_telegram_chat_id: '-1001234',
    notify_telegram_api_url: http.telegram?.base,
    ...secretSettings(http),
  };
  for (const [key, value] of Object.entries(settings)) expect({ key, status: (await h.api.put(`/settings/${key}`, { value })).status }).toEqual({ key, status: 200 });
  const repo = (await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, 'repo'), password: 'pw', init: true })).body.data;
  await h.api.patch(`/repos/${repo.id}`, { password: 'not the password' });
  jobId = (await h.api.post('/backup-jobs', { name: `nightly-${unique()}`, repo_id: repo.id, source_paths: [join(dir, 'src')] })).body.data.id;
});
afterAll(async () => {
  await Promise.all(Object.values(http).map((r) => r.close()));
  await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('channel secrets are stored sealed and read back masked', async () => {
  for (const key of Object.keys(secretSettings(http))) {
    expect((await h.api.get(`/settings/${key}`)).body.data).toMatchObject({ type: 'secret', value: '********' });
  }
  const rows = JSON.stringify(await h.sql("select value from settings where key like 'notify_%'"));
  for (const value of Object.values(secretSettings(http))) expect(rows).not.toContain(value);
});

test('a failed run reaches every channel, each in its own format', async () => {
  const run = (await h.api.post(`/backup-jobs/${jobId}/run?wait=60`)).body.data;
  expect(run.status).toBe('failed');
  const first = (channel: string) => waitFor(async () => http[channel]?.received.find((r) => r.headers['content-length'] !== '0' && (channel !== 'slack' || http.slack?.received.length === 2)), `the ${channel} message`, 90_000);
  const json = (r: Received) => JSON.parse(r.raw.toString());
  const title = expect.stringMatching(/^Backup job nightly-.* failed$/);

  const generic = await first('webhook');
  expect(generic.headers.authorization).toBe('Bearer generic-bearer-token');
  expect(json(generic)).toMatchObject({ title, profile: 'backup_job', event: 'failure', severity: 'error', context_type: 'backup_job', context_id: jobId, plain_body: expect.stringMatching(/wrong repository password/), link_url: `/api/v1/backup-jobs/${jobId}/runs/${run.id}` });

  expect(json(await first('slack'))).toEqual({ text: expect.stringMatching(/^\*Backup job nightly-.* failed\*\n.*wrong repository password/s) });
  expect(http.slack?.received).toHaveLength(2); // refused once (503), taken on the retry
  expect((await first('slack')).path).toBe('/services/T000/B000/slacksecret');
  expect(json(await first('discord'))).toEqual({ content: expect.stringMatching(/^\*\*Backup job nightly-.* failed\*\*/) });
  expect(json(await first('teams'))).toMatchObject({ '@type': 'MessageCard', title, text: expect.stringMatching(/wrong repository password/) });

  const gotify = await first('gotify');
  expect([gotify.path, gotify.headers['x-gotify-key']]).toEqual(['/message', 'gotify-app-token']);
  expect(json(gotify)).toMatchObject({ title, priority: 8 });
  const ntfy = await first('ntfy');
  expect([ntfy.path, ntfy.headers.authorization, ntfy.headers.priority]).toEqual(['/backups', 'Bearer ntfy-token', 'high']);
  expect(decodeURIComponent(String(ntfy.headers.title))).toMatch(/^Backup job nightly-.* failed$/);
  const telegram = await first('telegram');
  expect(telegram.path).toBe('/bot123456:telegram-bot-token/sendMessage');
  expect(json(telegram)).toMatchObject({ chat_id: '-1001234', text: expect.stringMatching(/^Backup job nightly-.* failed\n/) });

  const mail = await waitFor(async () => mails[0], 'the email');
  expect(mail).toMatchObject({ from: 'backups@example.org', to: ['ops@example.org', 'oncall@example.org'], user: 'mailer', password: 'smtp-password' });
  expect(mail.data).toMatch(/Subject: \[Backup Control Plane\] Backup job nightly-.* failed/);
  expect(mail.data).toMatch(/wrong repository password/);

  const deliveries = await waitFor(async () => {
    const rows = await h.sql<{ channel: string; state: string; attempts: number }>('select channel, state, attempts from notification_deliveries order by channel');
    return rows.length === 8 && rows.every((r) => r.state === 'delivered') ? rows : undefined;
  }, 'every delivery recorded delivered', 60_000);
  expect(deliveries.find((d) => d.channel === 'slack')?.attempts).toBe(2);
});
