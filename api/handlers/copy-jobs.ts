import { CopyJob, Host, OperationRun, Repo } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { copyJobRun } from '../../workflows/copy-job-run';
import { JobIdKey, RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import { idFilter, requireHost } from '../auth/resource-scope';
import { userPermissions } from '../auth/roles';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondCreated, respondNoContent } from '../envelope';
import { ApiError, conflict, invalidField, notFound } from '../errors';
import { findOr404, referenced } from '../lookup';
import { startOperationRun } from '../operation-runs';
import { assignScheduleFields } from '../schedule-fields';
import { applyCopySchedule } from '../schedule-sync';
import { findPage, namesById, pageMeta, pageOf } from '../pagination';
import { repositoryPathProblem } from '../paths';
import { ACTIVE_RUN_STATUSES } from '../runs';
import { copyJobView } from '../views';
import { respondWithOperationRun } from './repo-runs';

const findJob = (ctx: ApiContext, id: number) => findOr404(ctx.state.em, CopyJob, id, 'copy job', { populate: ['sourceRepo'] });
const sourceOf = async (ctx: ApiContext, id: number) => (await referenced(ctx.state.em, Repo, id, 'source_repo_id', 'repository')) as Repo;

type CopyJobBody = RequestBody<'createCopyJob'> | RequestBody<'updateCopyJob'>;

/** Fields that decide where a repository's data goes: whoever sets them can read all of it. */
const DESTINATION_FIELDS = ['source_repo_id', 'dest_path', 'dest_host_id', 'dest_password', 'rclone_config'] as const;

/** Applies the fields a request sets; secrets are sealed, never kept in clear. */
async function assign(ctx: ApiContext, job: CopyJob, body: CopyJobBody): Promise<void> {
  const auth = authOf(ctx);
  if (DESTINATION_FIELDS.some((field) => body[field] !== undefined) && !userPermissions(auth.user).has('restore.run')) {
    throw new ApiError(403, 'forbidden', 'choosing what a copy job copies and where requires the restore.run permission as well: a copy reads every snapshot', { required_permission: 'restore.run' });
  }
  if (body.dest_host_id !== undefined) job.destHost = await referenced(ctx.state.em, Host, body.dest_host_id, 'dest_host_id', 'host');
  if (body.dest_path !== undefined) {
    const problem = repositoryPathProblem(body.dest_path);
    if (problem) throw invalidField('dest_path', problem);
    job.destPath = body.dest_path;
  }
  if (body.dest_password_source !== undefined && body.dest_password_source !== 'local') {
    throw invalidField('dest_password_source', 'only local (a password stored here, encrypted) is supported');
  }
  const { secrets } = ctx.services;
  if (body.dest_password !== undefined) job.destPasswordSecret = secrets.seal(body.dest_password, SecretPurpose.copyDestPassword);
  if (body.rclone_config !== undefined) job.rcloneConfigSecret = body.rclone_config === null ? null : secrets.seal(body.rclone_config, SecretPurpose.rcloneConfig);
  if (body.name !== undefined) job.name = body.name;
  if (body.dest_infisical_secret_name !== undefined) job.destInfisicalSecretName = body.dest_infisical_secret_name;
  if (body.init_destination !== undefined) job.initDestination = body.init_destination;
  if (body.filter_hosts !== undefined) job.filterHosts = body.filter_hosts;
  if (body.filter_tags !== undefined) job.filterTags = body.filter_tags;
  if (body.description !== undefined) job.description = body.description;
  assignScheduleFields(job, body);
  if (body.notification_policy !== undefined) job.notificationPolicy = body.notification_policy;
  if (body.retry_policy !== undefined) job.retryPolicy = body.retry_policy;
  if (!job.destPasswordSecret) throw invalidField('dest_password', 'the destination repository needs a password');
  if (job.sourceRepo && job.destPath === job.sourceRepo.path) throw invalidField('dest_path', 'the destination is the source repository itself');
  // Where the copy writes: the destination's SSH host, or (any other destination) the control plane.
  requireHost(auth.resources, job.destPath.startsWith('sftp:') ? (job.destHost?.id ?? null) : null);
  if (job.destPath.startsWith('sftp:')) {
    if (!job.destHost) throw invalidField('dest_host_id', 'an sftp: destination needs the host whose SSH key reaches it');
    // restic's sftp options apply to both repositories of a copy: one sftp side at a time.
    if (job.sourceRepo?.path.startsWith('sftp:')) throw invalidField('dest_path', 'copying from one sftp: repository to another is not supported');
  }
}

export async function listCopyJobs(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const { repos, hosts } = authOf(ctx).resources;
  const repoIds = idFilter(repos);
  const hostIds = idFilter(hosts);
  // As getCopyJob: a host-limited caller sees only jobs writing to its hosts over sftp.
  const [jobs, total] = await findPage(ctx.state.em, CopyJob, page, { ...(repoIds ? { sourceRepo: repoIds } : {}), ...(hostIds ? { destHost: hostIds } : {}) });
  const names = await namesById(ctx.state.em, Repo, jobs.map((j) => j.sourceRepo));
  respond(ctx, 200, jobs.map((job) => copyJobView(job, names.get(job.sourceRepo as number) ?? '')), pageMeta(page, total));
}

export async function getCopyJob(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, copyJobView(await findJob(ctx, ctx.state.params.id as number)));
}

export async function createCopyJob(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createCopyJob'>;
  const job = ctx.state.em.create(CopyJob, { name: body.name, sourceRepo: await sourceOf(ctx, body.source_repo_id), destPath: body.dest_path }, { persist: false });
  await assign(ctx, job, body);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.persist(job).flush();
  await applyCopySchedule(ctx.services, ctx.state.em, job.id);
  respondCreated(ctx, `/copy-jobs/${job.id}`, copyJobView(job));
}

export async function updateCopyJob(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'updateCopyJob'>;
  const job = await findJob(ctx, ctx.state.params.id as number);
  if (body.source_repo_id !== undefined) job.sourceRepo = await sourceOf(ctx, body.source_repo_id);
  await assign(ctx, job, body);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.flush();
  await applyCopySchedule(ctx.services, ctx.state.em, job.id);
  respond(ctx, 200, copyJobView(job));
}

export async function deleteCopyJob(ctx: ApiContext): Promise<void> {
  const id = ctx.state.params.id as number;
  const job = await findJob(ctx, id);
  await ctx.state.em.transactional(async (tx) => {
    const [locked] = await tx.execute('select id from copy_jobs where id = ? for update', [id]);
    if (!locked) throw notFound(`copy job ${id}`);
    const active = await tx.findOne(OperationRun, { kind: 'copy', jobId: id, status: { $in: [...ACTIVE_RUN_STATUSES] } });
    if (active) throw conflict('run_in_progress', `copy job ${id} has a run in progress`, { run_id: active.id });
    if (!isDryRun(ctx)) await tx.nativeDelete(CopyJob, { id });
  });
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { copy_job: copyJobView(job) } });
  await applyCopySchedule(ctx.services, ctx.state.em, id, true);
  respondNoContent(ctx);
}

/** Starts `restic copy` as a workflow: one run per copy job at a time; 202 at once, or 200 within `?wait=`. */
export async function runCopyJob(ctx: ApiContext): Promise<void> {
  const job = await findJob(ctx, ctx.state.params.id as number);
  const { snapshot_id: snapshotId = null } = (ctx.request.body ?? {}) as RequestBody<'runCopyJob'>;
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const run = await startOperationRun(ctx.services, ctx.state.em, authOf(ctx), {
    target: { kind: 'copy', jobId: job.id, repoId: job.sourceRepo.id },
    workflowIdPrefix: `copy-job-${job.id}`,
    params: { snapshot_id: snapshotId },
    workflow: copyJobRun,
    args: (runId) => [{ runId, jobId: job.id, repoId: job.sourceRepo.id, jobName: job.name, snapshotId }],
    typedSearchAttributes: [
      { key: RunKindKey, value: 'copy' },
      { key: JobIdKey, value: String(job.id) },
      { key: RepoIdKey, value: String(job.sourceRepo.id) },
    ],
    busy: `copy job ${job.id} already has a run in progress`,
  }, ctx.state.idempotencyKey);
  await respondWithOperationRun(ctx, run);
}
