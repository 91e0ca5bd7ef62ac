import type { EntityManager } from '@mikro-orm/postgresql';
import type { Middleware } from 'koa';
import { hostNotInScope, repoNotInScope, requireHost, requireRepo, type ResourceScope } from '../auth/resource-scope';
import { authOf, type ApiContext, type ApiState } from '../context';
import { ApiError } from '../errors';

/** What an operation's `x-resource-scope` can name: the kind of resource and where its id is. */
export const RESOURCE_KINDS = ['repo', 'repo_users', 'host', 'host_users', 'run_host', 'backup_job', 'copy_job', 'restore', 'ssh_key'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

/** Checks that the resource with this id (null: none given) is within the caller's scope (403 otherwise). */
type Check = (em: EntityManager, scope: ResourceScope, id: number | null) => Promise<void>;

const rows = <T>(em: EntityManager, query: string, params: unknown[]) => em.getConnection().execute<T[]>(query, params);

/** A repository is reached through the host it is stored on too (an sftp: repository lives there). */
async function requireRepoAndStorage(em: EntityManager, scope: ResourceScope, id: number): Promise<void> {
  requireRepo(scope, id);
  if (scope.hosts === null) return;
  const [repo] = await rows<{ ssh_host_id: number | null }>(em, 'select ssh_host_id from repos where id = ?', [id]);
  if (repo?.ssh_host_id) requireHost(scope, repo.ssh_host_id);
}

const CHECKS: Record<ResourceKind, Check> = {
  repo: async (em, scope, id) => {
    if (id !== null) await requireRepoAndStorage(em, scope, id);
  },
  // Changing a repository changes every job that backs up into it: all of them must be in reach.
  repo_users: async (em, scope, id) => {
    if (id === null || scope.hosts === null) return;
    for (const job of await rows<{ host_id: number | null }>(em, 'select host_id from backup_jobs where repo_id = ?', [id])) requireHost(scope, job.host_id);
  },
  host: async (_em, scope, id) => {
    if (id !== null) requireHost(scope, id);
  },
  // Changing a host changes every job run on it, every repository stored on it and every copy into it.
  host_users: async (em, scope, id) => {
    if (id === null || scope.repos === null) return;
    const users = await rows<{ repo_id: number }>(
      em,
      'select repo_id from backup_jobs where host_id = ? union select id from repos where ssh_host_id = ? union select source_repo_id from copy_jobs where dest_host_id = ?',
      [id, id, id],
    );
    for (const user of users) requireRepo(scope, user.repo_id);
  },
  // Where a job runs: null is the control plane itself.
  run_host: async (_em, scope, id) => requireHost(scope, id),
  // A job is in scope when its repository and its host are. To a limited caller an unknown job
  // answers like one out of scope, so that job ids reveal nothing; others get the handler's 404.
  backup_job: async (em, scope, id) => {
    if (id === null) return;
    const [job] = await em.getConnection().execute<{ repo_id: number; host_id: number | null }[]>('select repo_id, host_id from backup_jobs where id = ?', [id]);
    if (!job) {
      if (scope.repos !== null) throw repoNotInScope();
      if (scope.hosts !== null) throw hostNotInScope();
      return;
    }
    await requireRepoAndStorage(em, scope, job.repo_id);
    requireHost(scope, job.host_id);
  },
  // A copy job is in scope when its source repository is, and where it writes: the SSH host of an
  // sftp destination, else the control plane. Unknown ids answer as for backup jobs.
  copy_job: async (em, scope, id) => {
    if (id === null) return;
    const [job] = await rows<{ source_repo_id: number; dest_host_id: number | null }>(em, 'select source_repo_id, dest_host_id from copy_jobs where id = ?', [id]);
    if (!job) {
      if (scope.repos !== null) throw repoNotInScope();
      if (scope.hosts !== null) throw hostNotInScope();
      return;
    }
    await requireRepoAndStorage(em, scope, job.source_repo_id);
    requireHost(scope, job.dest_host_id);
  },
  // A restore is in scope when its repository and the host it restored onto are (no host: the
  // control plane); unknown ids answer as for backup jobs.
  restore: async (em, scope, id) => {
    if (id === null) return;
    const [restore] = await rows<{ repo_id: number; host_id: number | null }>(em, 'select repo_id, host_id from restores where id = ?', [id]);
    if (!restore) {
      if (scope.repos !== null) throw repoNotInScope();
      if (scope.hosts !== null) throw hostNotInScope();
      return;
    }
    await requireRepoAndStorage(em, scope, restore.repo_id);
    requireHost(scope, restore.host_id);
  },
  // A host-scoped caller reaches the keys its hosts use, and no other.
  ssh_key: async (em, scope, id) => {
    if (scope.hosts === null || id === null) return;
    const hosts = await rows<{ id: number }>(em, 'select id from hosts where ssh_key_id = ?', [id]);
    if (!hosts.some((host) => scope.hosts?.has(host.id))) throw hostNotInScope();
  },
};

interface Annotated {
  'x-resource-scope'?: Partial<Record<ResourceKind, string>>;
  'x-resource-create'?: 'repo' | 'host';
  /** The operation spans every repository and host (metrics, global tasks): only an unlimited caller. */
  'x-resource-scope-all'?: boolean;
}

function valueAt(ctx: ApiContext, source: string): unknown {
  const [where, name = ''] = source.split('.');
  if (where === 'path') return ctx.state.params[name];
  if (where === 'body') return (ctx.request.body as Record<string, unknown> | undefined)?.[name];
  throw new Error(`x-resource-scope: unknown source ${source}`);
}

/**
 * Enforces the repository/host scope an operation declares in the contract (`x-resource-scope`:
 * kind -> `path.<param>` or `body.<field>`; `x-resource-create`: the kind it creates;
 * `x-resource-scope-all`: every repository and host), before
 * the handler and before an idempotent replay. Lists filter by the same scope in their handlers.
 */
export function resourceScope(): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation as (ApiState['operation'] & Annotated) | undefined;
    const declared = operation?.['x-resource-scope'];
    const created = operation?.['x-resource-create'];
    const all = operation?.['x-resource-scope-all'] === true;
    if (!declared && !created && !all) return next();
    const { resources } = authOf(ctx as ApiContext);
    if (all && resources.repos !== null) throw repoNotInScope();
    if (all && resources.hosts !== null) throw hostNotInScope();
    if (created && resources[created === 'repo' ? 'repos' : 'hosts'] !== null) {
      throw new ApiError(403, `${created}_create_not_in_scope`, `a token or user limited to selected ${created}s cannot create one`);
    }
    for (const [kind, source] of Object.entries(declared ?? {}) as [ResourceKind, string][]) {
      const id = valueAt(ctx as ApiContext, source);
      // Absent: not part of this request. null: explicitly none (for run_host, the control plane). A list: each of them.
      for (const one of Array.isArray(id) ? id : [id]) {
        if (typeof one === 'number' || one === null) await CHECKS[kind](ctx.state.em, resources, one);
      }
    }
    await next();
  };
}
