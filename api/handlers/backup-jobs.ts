import { keepsNewest, type RetentionPolicy } from '../../common/retention-policy';
import { readSettings } from '../../common/settings';
import { BackupJob, BackupJobRun, Host, Repo, retentionPolicyOf } from '../../db/entities';
import { assignScheduleFields } from '../schedule-fields';
import { applyJobSchedule } from '../schedule-sync';
import { observeBackupRun, startBackupRun } from '../backup-runs';
import { idFilter, recordsInReach } from '../auth/resource-scope';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondCreated, respondNoContent } from '../envelope';
import { conflict, invalidField, notFound } from '../errors';
import { findOr404, referenced } from '../lookup';
import { findPage, namesById, pageMeta, pageOf } from '../pagination';
import { localPathProblem, repositoryPathProblem } from '../paths';
import { assignRetentionFields } from '../retention-fields';
import { ACTIVE_RUN_STATUSES, respondWithRun } from '../runs';
import { backupJobView, jobRunView } from '../views';

const POPULATE = ['repo', 'host'] as const;

const findJob = (ctx: ApiContext, id: number) => findOr404(ctx.state.em, BackupJob, id, 'backup job', { populate: POPULATE });
const repoOf = async (ctx: ApiContext, id: number) => (await referenced(ctx.state.em, Repo, id, 'repo_id', 'repository')) as Repo;
const hostOf = (ctx: ApiContext, id: number | null | undefined) => referenced(ctx.state.em, Host, id, 'host_id', 'host');

/** An enabled retention policy must keep the newest snapshots: one that could keep nothing is refused here, not found out later. */
function checkRetention(job: BackupJob): void {
  if (job.retentionEnabled && !keepsNewest(retentionPolicyOf(job) as RetentionPolicy)) {
    throw invalidField('retention_enabled', 'an enabled retention policy must keep something: set retention_keep_last, _hourly, _daily, _weekly, _monthly, _yearly or _within (tags alone may keep nothing)');
  }
}

/** Hooks a request sets run only programs of the allow-list (setting `hook_allowed_commands`). */
async function checkHooks(ctx: ApiContext, body: { pre_hook_command?: string[] | null; post_hook_command?: string[] | null }): Promise<void> {
  const hooks = [['pre_hook_command', body.pre_hook_command], ['post_hook_command', body.post_hook_command]] as const;
  if (hooks.every(([, argv]) => !argv)) return;
  const { hook_allowed_commands: allowed } = await readSettings(ctx.state.em, ['hook_allowed_commands']);
  for (const [field, argv] of hooks) {
    const program = argv?.[0];
    if (program !== undefined && !allowed.includes(program)) {
      throw invalidField(field, `${program} is not an allowed hook program (setting hook_allowed_commands)`);
    }
  }
}

function checkPaths(body: { source_paths?: string[]; remote_repo_path?: string | null }): void {
  body.source_paths?.forEach((path, index) => {
    const problem = localPathProblem(path);
    if (problem) throw invalidField(`source_paths[${index}]`, problem);
  });
  const remote = body.remote_repo_path ? repositoryPathProblem(body.remote_repo_path) : null;
  if (remote) throw invalidField('remote_repo_path', remote);
}

export async function listBackupJobs(ctx: ApiContext): Promise<void> {
  const { em } = ctx.state;
  const page = pageOf(ctx.state.query);
  // Local jobs (no host) run on the control plane itself: a host-scoped caller does not see them.
  const { repos: repoScope, hosts: hostScope } = authOf(ctx).resources;
  const repoIds = idFilter(repoScope);
  const hostIds = idFilter(hostScope);
  const [jobs, total] = await findPage(em, BackupJob, page, { ...(repoIds ? { repo: repoIds } : {}), ...(hostIds ? { host: hostIds } : {}) });
  const [repos, hosts] = await Promise.all([namesById(em, Repo, jobs.map((j) => j.repo)), namesById(em, Host, jobs.map((j) => j.host))]);
  const views = jobs.map((job) => backupJobView(job, { repo: repos.get(job.repo as number) ?? '', host: job.host === null ? null : (hosts.get(job.host) ?? null) }));
  respond(ctx, 200, views, pageMeta(page, total));
}

export async function getBackupJob(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, backupJobView(await findJob(ctx, ctx.state.params.id as number)));
}

export async function createBackupJob(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createBackupJob'>;
  checkPaths(body);
  const repo = await repoOf(ctx, body.repo_id);
  const host = await hostOf(ctx, body.host_id);
  const job = ctx.state.em.create(BackupJob, {
    name: body.name,
    repo,
    host,
    sourcePaths: body.source_paths,
    tags: body.tags,
    excludes: body.excludes,
    description: body.description ?? null,
    notifyOnFailure: body.notify_on_failure,
    notificationPolicy: body.notification_policy ?? null,
    remoteRepoPath: body.remote_repo_path ?? null,
    hostnameOverride: body.hostname_override ?? null,
  }, { persist: false });
  assignScheduleFields(job, body);
  assignRetentionFields(job, body);
  job.preHookCommand = body.pre_hook_command ?? null;
  job.postHookCommand = body.post_hook_command ?? null;
  checkRetention(job);
  await checkHooks(ctx, body);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.persist(job).flush();
  await applyJobSchedule(ctx.services, ctx.state.em, job.id);
  respondCreated(ctx, `/backup-jobs/${job.id}`, backupJobView(job));
}

export async function updateBackupJob(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'updateBackupJob'>;
  const job = await findJob(ctx, ctx.state.params.id as number);
  checkPaths(body);
  if (body.source_paths !== undefined) job.sourcePaths = body.source_paths;
  if (body.name !== undefined) job.name = body.name;
  if (body.repo_id !== undefined) job.repo = await repoOf(ctx, body.repo_id);
  if (body.host_id !== undefined) job.host = await hostOf(ctx, body.host_id);
  if (body.tags !== undefined) job.tags = body.tags;
  if (body.excludes !== undefined) job.excludes = body.excludes;
  if (body.description !== undefined) job.description = body.description;
  assignScheduleFields(job, body);
  if (body.notify_on_failure !== undefined) job.notifyOnFailure = body.notify_on_failure;
  if (body.notification_policy !== undefined) job.notificationPolicy = body.notification_policy;
  if (body.remote_repo_path !== undefined) job.remoteRepoPath = body.remote_repo_path;
  if (body.hostname_override !== undefined) job.hostnameOverride = body.hostname_override;
  assignRetentionFields(job, body);
  if (body.pre_hook_command !== undefined) job.preHookCommand = body.pre_hook_command;
  if (body.post_hook_command !== undefined) job.postHookCommand = body.post_hook_command;
  checkRetention(job);
  await checkHooks(ctx, body);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.flush();
  await applyJobSchedule(ctx.services, ctx.state.em, job.id);
  respond(ctx, 200, backupJobView(job));
}

export async function deleteBackupJob(ctx: ApiContext): Promise<void> {
  const id = ctx.state.params.id as number;
  await ctx.state.em.transactional(async (tx) => {
    // Locked against a run being triggered meanwhile (which takes the row FOR SHARE).
    const [job] = await tx.execute('select id from backup_jobs where id = ? for update', [id]);
    if (!job) throw notFound(`backup job ${id}`);
    const active = await tx.findOne(BackupJobRun, { jobId: id, status: { $in: [...ACTIVE_RUN_STATUSES] } });
    if (active) throw conflict('run_in_progress', `backup job ${id} has a run in progress`, { run_id: active.id });
    if (!isDryRun(ctx)) await tx.nativeDelete(BackupJob, { id });
  });
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { backup_job: backupJobView(await findJob(ctx, id)) } });
  await applyJobSchedule(ctx.services, ctx.state.em, id, true);
  respondNoContent(ctx);
}

/** 202 with the queued run at once; with `?wait=N`, 200 if it finished within N seconds. */
export async function runBackupJob(ctx: ApiContext): Promise<void> {
  const job = await findJob(ctx, ctx.state.params.id as number);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const started = await startBackupRun(ctx.services, ctx.state.em, job, authOf(ctx), ctx.state.idempotencyKey);
  await respondWithRun(ctx, started, (run) => observeBackupRun(ctx.services, ctx.state.em, run), (run, progress) => jobRunView(run, ctx.services.temporalConfig, progress));
}

export async function listBackupJobRuns(ctx: ApiContext): Promise<void> {
  const job = await findJob(ctx, ctx.state.params.id as number);
  const page = pageOf(ctx.state.query);
  const status = ctx.state.query.status as BackupJobRun['status'] | undefined;
  const [runs, total] = await findPage(ctx.state.em, BackupJobRun, page, { jobId: job.id, ...(status ? { status } : {}), ...recordsInReach(authOf(ctx).resources) }, { queuedAt: 'desc', id: 'asc' });
  const views = await Promise.all(
    runs.map(async (row) => {
      const { run, progress } = await observeBackupRun(ctx.services, ctx.state.em, row);
      return jobRunView(run, ctx.services.temporalConfig, progress);
    }),
  );
  respond(ctx, 200, views, pageMeta(page, total));
}

export async function getBackupJobRun(ctx: ApiContext): Promise<void> {
  const jobId = ctx.state.params.id as number;
  const run = await ctx.state.em.findOne(BackupJobRun, { id: ctx.state.params.run_id as string, jobId, ...recordsInReach(authOf(ctx).resources) });
  if (!run) throw notFound(`run ${String(ctx.state.params.run_id)} of backup job ${jobId}`);
  const observed = await observeBackupRun(ctx.services, ctx.state.em, run);
  respond(ctx, 200, jobRunView(observed.run, ctx.services.temporalConfig, observed.progress));
}
