import { DomainEvent } from '../db/entities';
import type { ResticSession } from './access';
import type { ActivityDeps } from './deps';
import { ResticExit, runRestic, type ResticResult } from './restic';

export interface StaleLockRecovery {
  deps: ActivityDeps;
  session: ResticSession;
  repoId: number;
  /** What was refused by the lock (`check`, `forget`, `backup`), for the record. */
  operation: string;
  warnings: string[];
}

/**
 * Runs a restic command; if restic finds the repository locked, a plain `restic unlock` removes
 * the locks it knows to be stale (their process is gone, or they were not refreshed for 30
 * minutes; never a live process's lock, unlike `--remove-all`). If it removed any, the removal is
 * recorded and the command is tried once more; otherwise the locked result stands.
 */
export async function withStaleLockRecovery(recovery: StaleLockRecovery, command: () => Promise<ResticResult>): Promise<ResticResult> {
  const first = await command();
  if (first.exitCode !== ResticExit.locked) return first;
  const { session, deps } = recovery;
  let removed = 0;
  const count = (line: string) => {
    const match = /successfully removed (\d+) locks?/.exec(line);
    if (match) removed += Number(match[1]);
  };
  const unlock = await runRestic(session.exec, session.binary, session.access, ['unlock'], { onOtherStdout: count, onOtherStderr: count });
  if (unlock.exitCode !== 0 || removed === 0) return first;
  const message = `removed ${removed} stale restic lock${removed === 1 ? '' : 's'} left by a process that no longer runs, then retried ${recovery.operation}`;
  recovery.warnings.push(message);
  const em = deps.orm.em.fork();
  em.create(DomainEvent, { type: 'repo.stale_lock_removed', payload: { repo_id: recovery.repoId, operation: recovery.operation, locks_removed: removed } });
  await em.flush();
  return command();
}
