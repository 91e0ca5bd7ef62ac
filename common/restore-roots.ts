/** Directories the system lives in: no managed restore root may be, or be inside, one of them. */
const SYSTEM_DIRECTORIES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/root', '/run', '/sbin', '/sys', '/usr'];

/**
 * Why a directory cannot be a managed restore root, or null. A snapshot path `P` lands at
 * `<root>/P`, so a root of `/` (or a system directory) would make a managed restore overwrite
 * live files without the checks of a restore to the original location.
 */
export function managedRootProblem(path: string): string | null {
  if (path.split('/').filter(Boolean).length < 2) return 'must be at least two levels deep (e.g. /var/restores), never / or a top-level directory';
  const system = SYSTEM_DIRECTORIES.find((dir) => path === dir || path.startsWith(`${dir}/`));
  return system ? `must not be inside ${system}` : null;
}
