import { posix } from 'node:path';

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why a path inside a snapshot cannot be restored by itself, or null: absolute, normal form, no `..`. */
export function includePathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must be an absolute path inside the snapshot';
  if (path === '/') return 'must name a path inside the snapshot (omit include to restore all of it)';
  if (CONTROL.test(path)) return 'must not contain control characters';
  if (path.split('/').includes('..')) return 'must not contain ".." segments';
  const normalised = posix.normalize(path);
  return normalised === path || `${normalised}/` === path ? null : `must be written in normal form (${normalised})`;
}

/** A name as one safe directory name: no separators, never `.` or `..`. */
function segment(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '_');
  return /^\.*$/.test(safe) ? `_${safe}` : safe;
}

/** Where a managed restore goes: `<root>/<snapshot hostname>/<repository name>`, or the root itself. */
export function managedTarget(root: string, context: { hostname: string; repoName: string }, appendContextSubdir: boolean): string {
  return appendContextSubdir ? posix.join(root, segment(context.hostname), segment(context.repoName)) : root;
}

const within = (path: string, root: string) => root === '/' || path === root || path.startsWith(`${root}/`);

/** The first path outside every allowed directory, or null when all are inside one. */
export function pathOutside(paths: string[], allowed: string[]): string | null {
  return paths.find((path) => !allowed.some((root) => within(path.replace(/\/$/, ''), root))) ?? null;
}

/** The reference product's tag for a restore, e.g. `partial-remote-managed`. */
export function restoreModeTag(options: { partial: boolean; remote: boolean; destinationMode: string }): string {
  return `${options.partial ? 'partial' : 'full'}-${options.remote ? 'remote' : 'local'}-${options.destinationMode}`;
}
