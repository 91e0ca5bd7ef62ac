import { posix } from 'node:path';

/** restic backends addressed by a `<scheme>:` prefix rather than a local path. */
const BACKEND = /^(sftp|rest|s3|b2|azure|gs|swift|rclone):/;
const PSEUDO_FILESYSTEMS = ['/proc', '/sys', '/dev'];
const CONTROL = /[\u0000-\u001f\u007f]/;
/** `scheme://user:password@`: credentials that would end up on restic's command line. */
const URL_CREDENTIALS = /^[a-z0-9]+:[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i;

export function isBackendString(path: string): boolean {
  return BACKEND.test(path);
}

/**
 * Why a local path is refused, or null when it is acceptable: it must be absolute and normalised
 * (no `//`, `.` or `..` segments, which could dress up a forbidden path), free of control
 * characters, and outside the kernel's pseudo filesystems.
 */
export function localPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (CONTROL.test(path)) return 'must not contain control characters';
  if (path.split('/').includes('..')) return 'must not contain ".." segments';
  const normalised = posix.normalize(path);
  if (normalised !== path) return `must be written in normal form (${normalised})`;
  const pseudo = PSEUDO_FILESYSTEMS.find((root) => normalised === root || normalised.startsWith(`${root}/`));
  return pseudo ? `must not be under ${pseudo}` : null;
}

/**
 * A repository location: a local path that passes localPathProblem, or a backend string whose
 * location cannot be read as an option by the program restic hands it to, and that carries no
 * credentials (they would be visible in the worker's process list).
 */
export function repositoryPathProblem(path: string): string | null {
  if (!isBackendString(path)) return localPathProblem(path);
  if (CONTROL.test(path)) return 'must not contain control characters';
  const location = path.slice(path.indexOf(':') + 1);
  if (!/^[A-Za-z0-9_/[]/.test(location)) return 'the location after the backend name must start with a letter, a digit, "_", "/" or "["';
  if (/\s/.test(location)) return 'must not contain spaces';
  if (URL_CREDENTIALS.test(path)) return 'must not contain credentials: they would be visible on the command line of restic';
  return null;
}
