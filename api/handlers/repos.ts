import { createHash } from 'node:crypto';
import { ForeignKeyConstraintViolationException } from '@mikro-orm/core';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { FailureType } from '../../common/failures';
import { BackupJob, CopyJob, DomainEvent, Host, Repo } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { repositoryInit } from '../../workflows/repository';
import { RepoIdKey, RunKindKey } from '../../workflows/search-attributes';
import { idFilter } from '../auth/resource-scope';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondCreated, respondNoContent } from '../envelope';
import { ApiError, conflict, invalidField, missingField } from '../errors';
import { findOr404, referenced } from '../lookup';
import { findPage, pageMeta, pageOf } from '../pagination';
import { repositoryPathProblem } from '../paths';
import { repoView } from '../views';
import { applicationFailureOf, executeWorkflow } from '../workflow-calls';

export const findRepo = (ctx: ApiContext, id: number) => findOr404(ctx.state.em, Repo, id, 'repository');
const sshHostOf = (ctx: ApiContext, id: number | null | undefined) => referenced(ctx.state.em, Host, id, 'ssh_host_id', 'host');

function checkPath(path: string): void {
  const problem = repositoryPathProblem(path);
  if (problem) throw invalidField('path', problem);
}

export async function listRepos(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const { repos: repoScope, hosts: hostScope } = authOf(ctx).resources;
  const ids = idFilter(repoScope);
  const hostIds = idFilter(hostScope);
  // A repository stored on a host (sftp:) is out of reach with that host.
  const [repos, total] = await findPage(ctx.state.em, Repo, page, {
    ...(ids ? { id: ids } : {}),
    ...(hostIds ? { $or: [{ sshHost: null }, { sshHost: hostIds }] } : {}),
  });
  respond(ctx, 200, repos.map(repoView), pageMeta(page, total));
}

export async function getRepo(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, repoView(await findRepo(ctx, ctx.state.params.id as number)));
}

export async function createRepo(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createRepo'>;
  const { em } = ctx.state;
  checkPath(body.path);
  if (body.password_source !== 'local') {
    throw invalidField('password_source', `password source ${body.password_source} is not supported yet; use local`);
  }
  if (!body.password) throw missingField('password');
  const sshHost = await sshHostOf(ctx, body.ssh_host_id);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const repo = em.create(Repo, {
    name: body.name,
    path: body.path,
    passwordSecret: ctx.services.secrets.seal(body.password, SecretPurpose.repoPassword),
    passwordSource: body.password_source,
    description: body.description ?? null,
    alertHours: body.alert_hours,
    notifyEmail: body.notify_email ?? null,
    sshHost,
  });
  await em.flush();

  if (body.init) {
    try {
      await executeWorkflow(ctx.services, repositoryInit, {
        // One init per location at a time: a concurrent one is refused instead of racing restic.
        workflowId: `repo-init-${createHash('sha256').update(body.path).digest('hex').slice(0, 24)}`,
        workflowIdConflictPolicy: 'FAIL',
        args: [{ repoId: repo.id }],
        typedSearchAttributes: [
          { key: RunKindKey, value: 'repo-init' },
          { key: RepoIdKey, value: String(repo.id) },
        ],
      });
    } catch (error) {
      // A repository that could not be initialised is not kept.
      await em.removeAndFlush(repo);
      throw initError(error, body.path);
    }
  }
  // Once it is there to stay (an init that failed removed it).
  em.create(DomainEvent, { type: 'repo.created', payload: { id: repo.id, name: repo.name, path: repo.path } });
  await em.flush();
  respondCreated(ctx, `/repos/${repo.id}`, repoView(repo));
}

function initError(error: unknown, path: string): unknown {
  if (error instanceof WorkflowExecutionAlreadyStartedError) {
    return conflict('repo_init_in_progress', `${path} is being initialised by another request`);
  }
  const failure = applicationFailureOf(error);
  if (!failure) return error;
  if (failure.type === FailureType.RepositoryAlreadyInitialized) {
    return conflict('repo_already_initialized', `a restic repository already exists at ${path}`);
  }
  if (failure.type === FailureType.HostKeyNotPinned || failure.type === FailureType.InvalidConfiguration) {
    return new ApiError(422, 'repo_init_failed', failure.message);
  }
  return new ApiError(422, 'repo_init_failed', `restic could not initialise the repository: ${failure.message}`);
}

export async function updateRepo(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'updateRepo'>;
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  if (body.path !== undefined) {
    checkPath(body.path);
    repo.path = body.path;
  }
  if (body.name !== undefined) repo.name = body.name;
  if (body.description !== undefined) repo.description = body.description;
  if (body.alert_hours !== undefined) repo.alertHours = body.alert_hours;
  if (body.notify_email !== undefined) repo.notifyEmail = body.notify_email;
  if (body.notification_policy !== undefined) repo.notificationPolicy = body.notification_policy;
  if (body.ssh_host_id !== undefined) repo.sshHost = await sshHostOf(ctx, body.ssh_host_id);
  if (body.password !== undefined) repo.passwordSecret = ctx.services.secrets.seal(body.password, SecretPurpose.repoPassword);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.flush();
  respond(ctx, 200, repoView(repo));
}

export async function deleteRepo(ctx: ApiContext): Promise<void> {
  const repo = await findRepo(ctx, ctx.state.params.id as number);
  const [jobs, copies] = await Promise.all([ctx.state.em.count(BackupJob, { repo: repo.id }), ctx.state.em.count(CopyJob, { sourceRepo: repo.id })]);
  if (jobs > 0) throw conflict('repo_in_use', `repository ${repo.id} is used by backup jobs; delete or move them first`);
  if (copies > 0) throw conflict('repo_in_use', `repository ${repo.id} is the source of copy jobs; delete or move them first`);
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { repo: repoView(repo) } });
  try {
    ctx.state.em.remove(repo);
    ctx.state.em.create(DomainEvent, { type: 'repo.deleted', payload: { id: repo.id, name: repo.name, path: repo.path } });
    await ctx.state.em.flush();
  } catch (error) {
    if (error instanceof ForeignKeyConstraintViolationException) throw conflict('repo_in_use', `repository ${repo.id} is still referenced`);
    throw error;
  }
  respondNoContent(ctx);
}
