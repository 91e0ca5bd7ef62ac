import type { ScopeMode } from '../../db/entities';
import { ApiError } from '../errors';

/** Ids a caller may reach; null = every one. */
export type IdScope = ReadonlySet<number> | null;

export interface ResourceScope {
  repos: IdScope;
  hosts: IdScope;
}

interface ScopeSetting {
  mode: ScopeMode;
  ids: readonly number[];
}

/** The ids both settings allow (a token narrows its user; it never widens them). */
export function intersect(...settings: ScopeSetting[]): IdScope {
  let result: Set<number> | null = null;
  for (const { mode, ids } of settings) {
    if (mode !== 'selected') continue;
    result = result === null ? new Set(ids) : new Set(ids.filter((id) => result?.has(id)));
  }
  return result;
}

export const inScope = (scope: IdScope, id: number) => scope === null || scope.has(id);

/** Whether `inner` allows nothing that `outer` does not. */
export function scopeWithin(inner: IdScope, outer: IdScope): boolean {
  if (outer === null) return true;
  return inner !== null && [...inner].every((id) => outer.has(id));
}

// The messages name no id: the caller may not know which repository or host a job uses.
export const repoNotInScope = () => new ApiError(403, 'repo_not_in_scope', "the repository is outside this token's scope");
export const hostNotInScope = () => new ApiError(403, 'host_not_in_scope', "the host is outside this token's scope");

export function requireRepo(scope: ResourceScope, repoId: number): void {
  if (!inScope(scope.repos, repoId)) throw repoNotInScope();
}

/**
 * A null host is the control plane itself (a local job): it reads the worker's own files, so only
 * a caller whose hosts are not limited may use it.
 */
export function requireHost(scope: ResourceScope, hostId: number | null): void {
  if (hostId === null ? scope.hosts !== null : !inScope(scope.hosts, hostId)) throw hostNotInScope();
}

/** The ids of a scope as a query filter value (`{$in}`), or undefined for every id. */
export function idFilter(scope: IdScope): { $in: number[] } | undefined {
  return scope === null ? undefined : { $in: [...scope] };
}

/**
 * A filter on records that keep the repository and host they were about (runs, restores), even
 * after a job moved: those in reach. A record of the control plane (no host) is out of reach of a
 * host-limited caller, as local jobs are.
 */
export function recordsInReach(scope: ResourceScope): { repoId?: { $in: number[] }; hostId?: { $in: number[] } } {
  const repoIds = idFilter(scope.repos);
  const hostIds = idFilter(scope.hosts);
  return { ...(repoIds ? { repoId: repoIds } : {}), ...(hostIds ? { hostId: hostIds } : {}) };
}
