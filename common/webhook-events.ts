/** Events a webhook can subscribe to (the reference's catalogue); `webhook.test` is sent by the test route only. */
export const WEBHOOK_EVENTS = [
  'backup_job.success', 'backup_job.failure',
  'copy_job.success', 'copy_job.failure',
  'restore.success', 'restore.failure',
  'repo.created', 'repo.deleted',
  'repo.check.failure',
  'snapshot.deleted',
  'api_token.created', 'api_token.revoked',
  'backup_job.missed', 'copy_job.missed',
  'report.weekly',
] as const;

export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const isWebhookEvent = (type: string): type is WebhookEvent => (WEBHOOK_EVENTS as readonly string[]).includes(type);
