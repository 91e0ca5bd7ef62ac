import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves a command like the shell does: an absolute/relative path is checked as is,
 * a bare name is searched on PATH (plus `extraDirs`). Returns the absolute path or null.
 */
export function which(command: string, extraDirs: string[] = []): string | null {
  if (command.includes('/')) {
    const abs = path.resolve(command);
    return isExecutableFile(abs) ? abs : null;
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).concat(extraDirs);
  for (const dir of dirs) {
    const candidate = path.join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}
