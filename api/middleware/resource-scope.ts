import type { EntityManager } from '@mikro-orm/postgresql';
import type { Middleware } from 'koa';
import { hostNotInScope, repoNotInScope, requireHost, requireRepo, type ResourceScope } from '../auth/resource-scope';
import { authOf, type ApiContext, type ApiState } from '../context';
import { ApiError } from '../errors';

/** What an operation's `x-resource-scope` can name: the kind of resource and where its id is. */
export const RESOURCE_KINDS = ['repo', 'host', 'run_host', 'backup_job', 'ssh_key'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

/** Checks that the resource with this id (null: none given) is within the caller's scope (403 otherwise). */
type Check = (em: EntityManager, scope: ResourceScope, id: number | null) => Promise<void>;

const CHECKS: Record<ResourceKind, Check> = {
  repo: async (_em, scope, id) => {
    if (id !== null) requireRepo(scope, id);
  },
  host: async (_em, scope, id) => {
    if (id !== null) requireHost(scope, id);
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
    requireRepo(scope, job.repo_id);
    requireHost(scope, job.host_id);
  },
  // A host-scoped caller reaches the keys its hosts use, and no other.
  ssh_key: async (em, scope, id) => {
    if (scope.hosts === null || id === null) return;
    const hosts = await em.getConnection().execute<{ id: number }[]>('select id from hosts where ssh_key_id = ?', [id]);
    if (!hosts.some((host) => scope.hosts?.has(host.id))) throw hostNotInScope();
  },
};

interface Annotated {
  'x-resource-scope'?: Partial<Record<ResourceKind, string>>;
  'x-resource-create'?: 'repo' | 'host';
}

function valueAt(ctx: ApiContext, source: string): unknown {
  const [where, name = ''] = source.split('.');
  if (where === 'path') return ctx.state.params[name];
  if (where === 'body') return (ctx.request.body as Record<string, unknown> | undefined)?.[name];
  throw new Error(`x-resource-scope: unknown source ${source}`);
}

/**
 * Enforces the repository/host scope an operation declares in the contract (`x-resource-scope`:
 * kind -> `path.<param>` or `body.<field>`; `x-resource-create`: the kind it creates), before
 * the handler and before an idempotent replay. Lists filter by the same scope in their handlers.
 */
export function resourceScope(): Middleware<ApiState> {
  return async (ctx, next) => {
    const operation = ctx.state.operation as (ApiState['operation'] & Annotated) | undefined;
    const declared = operation?.['x-resource-scope'];
    const created = operation?.['x-resource-create'];
    if (!declared && !created) return next();
    const { resources } = authOf(ctx as ApiContext);
    if (created && resources[created === 'repo' ? 'repos' : 'hosts'] !== null) {
      throw new ApiError(403, `${created}_create_not_in_scope`, `a token or user limited to selected ${created}s cannot create one`);
    }
    for (const [kind, source] of Object.entries(declared ?? {}) as [ResourceKind, string][]) {
      const id = valueAt(ctx as ApiContext, source);
      // Absent: not part of this request. null: explicitly none (for run_host, the control plane).
      if (typeof id === 'number' || id === null) await CHECKS[kind](ctx.state.em, resources, id);
    }
    await next();
  };
}
