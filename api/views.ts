import type { TemporalConfig } from '../common/config';
import type { RunLifecycle } from '../db/entities/run-lifecycle';
import { temporalUiLink } from '../common/temporal';
import { SETTINGS, type SettingKey } from '../common/settings';
import type { ApiToken, ApiTokenLog, AppNotification, BackupJob, BackupJobRun, CopyJob, Host, OperationRun, Repo, RepoStatsSample, Restore, Snapshot, SshKey, Webhook, WebhookDelivery, WebhookDeliveryAttempt } from '../db/entities';
import { webhookDeliveryWorkflowId } from '../workflows/webhook-delivery';
import type { Row } from './pagination';
import { retentionFieldsOf } from './retention-fields';
import { scheduleFieldsView } from './schedule-fields';
import type { components } from './contract.gen';

/**
 * The public shape of every resource. Secrets (sealed columns) have no field here, so they
 * cannot leave the server by accident.
 */
type Schemas = components['schemas'];

const iso = (date: Date | null) => (date ? date.toISOString() : null);
/** A to-one relation: a loaded entity, or the foreign key of a plain row. */
const idOf = (ref: { id: number } | number | null) => (typeof ref === 'number' ? ref : (ref?.id ?? null));

export function repoView(repo: Repo | Row<Repo>): Schemas['Repo'] {
  return {
    id: repo.id,
    name: repo.name,
    path: repo.path,
    description: repo.description,
    alert_hours: repo.alertHours,
    notify_email: repo.notifyEmail,
    password_source: repo.passwordSource,
    ssh_host_id: idOf(repo.sshHost),
    snapshots_refreshed_at: iso(repo.snapshotsRefreshedAt),
    created_at: repo.createdAt.toISOString(),
    updated_at: repo.updatedAt.toISOString(),
  };
}

export function hostView(host: Host | Row<Host>): Schemas['Host'] {
  return {
    id: host.id,
    name: host.name,
    hostname: host.hostname,
    port: host.port,
    user: host.user,
    ssh_key_id: idOf(host.sshKey),
    description: host.description,
    restore_original_enabled: host.restoreOriginalEnabled,
    restore_managed_root: host.restoreManagedRoot,
    restic_path: host.resticPath,
    has_sudo_password: host.sudoPasswordSecret !== null,
    host_key_fingerprint: host.hostKeyFingerprint,
    host_key_type: host.hostKeyType,
    host_key_pinned_at: iso(host.hostKeyPinnedAt),
    created_at: host.createdAt.toISOString(),
    updated_at: host.updatedAt.toISOString(),
  };
}

export function sshKeyView(key: SshKey): Schemas['SshKey'] {
  return {
    id: key.id,
    name: key.name,
    host: key.host,
    user: key.user,
    port: key.port,
    public_key: key.publicKey,
    fingerprint: key.fingerprint,
    key_type: key.keyType,
    description: key.description,
    created_at: key.createdAt.toISOString(),
  };
}

/** A job with the names of its repository and host (`names` for plain rows, else the loaded relations). */
export function backupJobView(job: BackupJob | Row<BackupJob>, names?: { repo: string; host: string | null }): Schemas['BackupJob'] {
  const loaded = typeof job.repo === 'object' ? (job as BackupJob) : null;
  return {
    id: job.id,
    name: job.name,
    repo_id: idOf(job.repo) as number,
    repo_name: names?.repo ?? loaded?.repo.name ?? '',
    host_id: idOf(job.host),
    host_name: names ? names.host : (loaded?.host?.name ?? null),
    source_paths: job.sourcePaths,
    tags: job.tags,
    excludes: job.excludes,
    description: job.description,
    ...scheduleFieldsView(job),
    notify_on_failure: job.notifyOnFailure,
    notification_policy: job.notificationPolicy ?? { inherit: true },
    remote_repo_path: job.remoteRepoPath,
    hostname_override: job.hostnameOverride,
    last_run: iso(job.lastRun),
    last_status: job.lastStatus,
    last_run_id: job.lastRunId,
    last_snapshot_id: job.lastSnapshotId,
    last_error: job.lastError,
    ...retentionFieldsOf(job),
    pre_hook_command: job.preHookCommand,
    post_hook_command: job.postHookCommand,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
  };
}

/** The life-cycle fields every run resource shares (backup runs, operation runs, restores). */
function runLifecycle<R extends RunLifecycle>(run: R) {
  return {
    status: run.status,
    trigger: run.trigger as R['trigger'],
    workflow_id: run.workflowId,
    queued_at: run.queuedAt.toISOString(),
    started_at: iso(run.startedAt),
    finished_at: iso(run.finishedAt),
    duration_ms: run.startedAt && run.finishedAt ? run.finishedAt.getTime() - run.startedAt.getTime() : null,
    warnings: run.warnings,
    failure: run.failureCode ? { code: run.failureCode, message: run.failureMessage ?? '' } : null,
    attempts: run.attempts,
  };
}

export function jobRunView(run: BackupJobRun, temporal: TemporalConfig, progress: Schemas['JobRun']['progress'] = null): Schemas['JobRun'] {
  return {
    ...runLifecycle(run),
    id: run.id,
    kind: 'backup',
    job_id: run.jobId,
    repo_id: run.repoId,
    host_id: run.hostId,
    snapshot_id: run.snapshotId,
    summary: run.summary,
    progress: run.status === 'running' ? progress : null,
    hooks: run.hooks as Schemas['JobRun']['hooks'],
    retention: run.retention as Schemas['JobRun']['retention'],
    links: {
      self: `/api/v1/backup-jobs/${run.jobId}/runs/${run.id}`,
      job: `/api/v1/backup-jobs/${run.jobId}`,
      temporal_ui: temporalUiLink(temporal, run.workflowId),
    },
  };
}

export function copyJobView(job: CopyJob | Row<CopyJob>, sourceName?: string): Schemas['CopyJob'] {
  const loaded = typeof job.sourceRepo === 'object' ? (job as CopyJob) : null;
  return {
    id: job.id,
    name: job.name,
    source_repo_id: idOf(job.sourceRepo) as number,
    source_name: sourceName ?? loaded?.sourceRepo.name ?? '',
    dest_path: job.destPath,
    dest_host_id: idOf(job.destHost),
    dest_password_source: job.destPasswordSource,
    dest_infisical_secret_name: job.destInfisicalSecretName,
    has_rclone_config: job.rcloneConfigSecret !== null,
    init_destination: job.initDestination,
    filter_hosts: job.filterHosts,
    filter_tags: job.filterTags,
    description: job.description,
    ...scheduleFieldsView(job),
    // Unset policies follow the global ones.
    notification_policy: job.notificationPolicy ?? { inherit: true },
    retry_policy: job.retryPolicy ?? { inherit: true },
    last_run: iso(job.lastRun),
    last_status: job.lastStatus,
    last_run_id: job.lastRunId,
    last_error: job.lastError,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
  };
}

/** What an operation run works on, as an API path. */
function operationResource(run: OperationRun): string {
  if (run.kind === 'copy') return `/api/v1/copy-jobs/${run.jobId}`;
  if (run.kind === 'snapshot_delete') return `/api/v1/repos/${run.repoId}/snapshots/${run.snapshotId}`;
  if (run.kind === 'scheduler_task') return '/api/v1/scheduler/tasks';
  // A maintenance pass works on several repositories (its `params.repo_ids`).
  if (run.kind === 'maintenance') return '/api/v1/repos';
  return `/api/v1/repos/${run.repoId}`;
}

export function operationRunView(run: OperationRun, temporal: TemporalConfig, progress: Schemas['OperationRun']['progress'] = null): Schemas['OperationRun'] {
  return {
    ...runLifecycle(run),
    id: run.id,
    kind: run.kind,
    job_id: run.jobId,
    repo_id: run.repoId,
    snapshot_id: run.snapshotId,
    task_key: run.taskKey,
    result: run.result,
    progress: run.status === 'running' ? progress : null,
    links: {
      self: run.repoId !== null ? `/api/v1/repos/${run.repoId}/runs/${run.id}` : null,
      resource: operationResource(run),
      temporal_ui: temporalUiLink(temporal, run.workflowId),
    },
  };
}

export function restoreView(restore: Restore, temporal: TemporalConfig, progress: Schemas['Restore']['progress'] = null): Schemas['Restore'] {
  return {
    ...runLifecycle(restore),
    id: restore.id,
    repo_id: restore.repoId,
    repo_name: restore.repoName,
    snapshot_id: restore.snapshotId,
    host_id: restore.hostId,
    host_name: restore.hostName,
    destination_mode: restore.destinationMode,
    append_context_subdir: restore.appendContextSubdir,
    include: restore.include,
    mode: restore.mode,
    resolved_target: restore.resolvedTarget,
    started_by: restore.startedBy,
    output: restore.output,
    summary: restore.summary,
    progress: restore.status === 'running' ? progress : null,
    links: {
      self: `/api/v1/restores/${restore.id}`,
      repo: `/api/v1/repos/${restore.repoId}`,
      temporal_ui: temporalUiLink(temporal, restore.workflowId),
    },
  };
}

export function snapshotView(snapshot: Snapshot): Schemas['Snapshot'] {
  return {
    id: snapshot.id,
    short_id: snapshot.shortId,
    time: snapshot.timeText,
    tree: snapshot.tree,
    ...(snapshot.parent ? { parent: snapshot.parent } : {}),
    paths: snapshot.paths,
    hostname: snapshot.hostname,
    username: snapshot.username,
    ...(snapshot.uid !== null ? { uid: snapshot.uid } : {}),
    ...(snapshot.gid !== null ? { gid: snapshot.gid } : {}),
    ...(snapshot.excludes ? { excludes: snapshot.excludes } : {}),
    tags: snapshot.tags,
    ...(snapshot.programVersion ? { program_version: snapshot.programVersion } : {}),
    ...(snapshot.summary ? { summary: snapshot.summary } : {}),
  };
}

export function apiTokenView(token: ApiToken): Schemas['ApiToken'] {
  return {
    id: token.id,
    user_id: token.user.id,
    name: token.name,
    display_token: `rui_${token.prefix}_********`,
    scopes: token.scopes as Schemas['Scope'][],
    allowed_ips: token.allowedIps,
    allowed_origins: token.allowedOrigins,
    rate_limit_per_minute: token.rateLimitPerMinute,
    read_only: token.readOnly,
    expires_at: iso(token.expiresAt),
    last_used_at: iso(token.lastUsedAt),
    last_used_ip: token.lastUsedIp,
    revoked_at: iso(token.revokedAt),
    revoked_reason: token.revokedReason,
    repo_scope_mode: token.repoScopeMode,
    repo_ids: token.repoScopeIds,
    host_scope_mode: token.hostScopeMode,
    host_ids: token.hostScopeIds,
    created_by_token_id: token.createdByTokenId,
    created_at: token.createdAt.toISOString(),
  };
}

export function apiTokenLogView(entry: Row<ApiTokenLog>): Schemas['ApiTokenLog'] {
  return {
    id: Number(entry.id),
    token_id: entry.tokenId,
    user_id: entry.userId,
    method: entry.method,
    endpoint: entry.endpoint,
    status: entry.status,
    ip: entry.ip,
    user_agent: entry.userAgent,
    latency_ms: entry.latencyMs,
    error: entry.error,
    created_at: new Date(entry.createdAt).toISOString(),
  };
}

/** What a read shows of a secret setting that is set. */
export const SECRET_MASK = '********';

export function settingView(key: SettingKey, stored: { value: unknown; updatedAt: Date } | undefined): Schemas['Setting'] {
  const spec = SETTINGS[key];
  const value = stored ? stored.value : spec.default;
  return {
    key,
    value: (spec.type === 'secret' ? (value ? SECRET_MASK : '') : value) as Schemas['SettingValue'],
    type: spec.type,
    description: spec.description,
    default: spec.default,
    updated_at: stored ? new Date(stored.updatedAt).toISOString() : null,
  };
}

export function repoStatsSampleView(sample: Row<RepoStatsSample>): Schemas['RepoStatsSample'] {
  return {
    id: sample.id,
    repo_id: sample.repoId,
    snapshot_count: sample.snapshotCount,
    total_size: Number(sample.totalSize),
    total_file_count: Number(sample.totalFileCount),
    recorded_at: new Date(sample.recordedAt).toISOString(),
  };
}

export function webhookView(webhook: Webhook | Row<Webhook>): Schemas['Webhook'] {
  return {
    id: webhook.id,
    name: webhook.name,
    url: webhook.url,
    events: webhook.events as Schemas['Webhook']['events'],
    enabled: webhook.enabled,
    last_status: webhook.lastStatus,
    last_attempt_at: iso(webhook.lastAttemptAt),
    last_error: webhook.lastError,
    created_at: webhook.createdAt.toISOString(),
  };
}

export function webhookDeliveryView(delivery: WebhookDelivery | Row<WebhookDelivery>, attempts: WebhookDeliveryAttempt[]): Schemas['WebhookDelivery'] {
  return {
    id: delivery.id,
    webhook_id: delivery.webhookId,
    guid: delivery.guid,
    event: delivery.event,
    payload: JSON.parse(delivery.body) as Schemas['WebhookDelivery']['payload'],
    state: delivery.state,
    status: delivery.status,
    response: delivery.response,
    error: delivery.error,
    attempts: delivery.attempts,
    next_attempt_at: iso(delivery.nextAttemptAt),
    attempted_at: iso(delivery.attemptedAt),
    redelivery_of: delivery.redeliveryOf,
    workflow_id: webhookDeliveryWorkflowId(delivery.id),
    created_at: delivery.createdAt.toISOString(),
    attempt_log: attempts.map((a) => ({ attempt: a.attempt, attempted_at: a.attemptedAt.toISOString(), status: a.status, latency_ms: a.latencyMs, error: a.error })),
  };
}

export function notificationView(n: AppNotification | Row<AppNotification>): Schemas['Notification'] {
  return {
    id: n.id, profile_key: n.profileKey, event_key: n.eventKey, context_type: n.contextType, context_id: n.contextId,
    context_name: n.contextName, title: n.title, body: n.body, severity: n.severity, link_url: n.linkUrl,
    browser_delivery: n.browserDelivery, is_read: n.isRead, created_at: n.createdAt.toISOString(), read_at: iso(n.readAt),
  };
}
