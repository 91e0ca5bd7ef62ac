/** Console helpers for the provisioning scripts: one prefix, stderr for progress, nothing secret. */

const PREFIX = '[stack]';

export function info(message: string): void {
  process.stderr.write(`${PREFIX} ${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`${PREFIX} WARNING: ${message}\n`);
}

export function header(title: string): void {
  process.stderr.write(`\n=== ${title} ===\n`);
}

/** A connection URL with its password replaced by `***`, safe to print. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
