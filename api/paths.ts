/** restic backends addressed by a `<scheme>:` prefix rather than a local path. */
const BACKEND = /^(sftp|rest|s3|b2|azure|gs|swift|rclone):/;
const PSEUDO_FILESYSTEMS = ['/proc', '/sys', '/dev'];

export function isBackendString(path: string): boolean {
  return BACKEND.test(path);
}

/**
 * Why a local path is refused, or null when it is acceptable: it must be absolute, free of
 * `..` segments and control characters, and outside the kernel's pseudo filesystems.
 */
export function localPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must be an absolute path';
   
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'must not contain control characters';
  if (path.split('/').includes('..')) return 'must not contain ".." segments';
  if (PSEUDO_FILESYSTEMS.some((root) => path === root || path.startsWith(`${root}/`))) return `must not be under ${path.split('/')[1] ? `/${path.split('/')[1]}` : path}`;
  return null;
}

/** A repository location: a backend string, or a local path that passes localPathProblem. */
export function repositoryPathProblem(path: string): string | null {
  if (isBackendString(path)) return /[\u0000-\u001f\u007f]/.test(path) ? 'must not contain control characters' : null;
  return localPathProblem(path);
}
