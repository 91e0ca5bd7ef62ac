import { Context } from '@temporalio/activity';

const KEEPALIVE_MS = 10_000;

/**
 * Runs `work` while heartbeating `details()` every few seconds, so a long restic command that
 * prints nothing is still known to be alive (and a dead worker is noticed within the timeout).
 */
export async function whileHeartbeating<T>(details: () => unknown, work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat(details());
  const timer = setInterval(() => context.heartbeat(details()), KEEPALIVE_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
