/** restic backends addressed by a `<scheme>:` prefix rather than a local path. */
const BACKEND = /^(sftp|rest|s3|b2|azure|gs|swift|rclone):/;
const PSEUDO_FILESYSTEMS = ['/proc', '/sys', '/dev'];
const CONTROL = /[\u0000-\u001f\u007f]/;

export function isBackendString(path: string): boolean {
  return BACKEND.test(path);
}

/**
 * Why a local path is refused, or null when it is acceptable: it must be absolute, free of
 * `..` segments and control characters, and outside the kernel's pseudo filesystems.
 */
export function localPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (CONTROL.test(path)) return 'must not contain control characters';
  if (path.split('/').includes('..')) return 'must not contain ".." segments';
  const pseudo = PSEUDO_FILESYSTEMS.find((root) => path === root || path.startsWith(`${root}/`));
  return pseudo ? `must not be under ${pseudo}` : null;
}

/** A repository location: a backend string, or a local path that passes localPathProblem. */
export function repositoryPathProblem(path: string): string | null {
  if (isBackendString(path)) return CONTROL.test(path) ? 'must not contain control characters' : null;
  return localPathProblem(path);
}
