import type { EntityManager } from '@mikro-orm/postgresql';

export const WINDOW_SECONDS = 60;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Unix time (seconds) when the oldest counted hit leaves the window. */
  reset: number;
  /** Seconds to wait before a new request can pass (0 when allowed). */
  retryAfter: number;
}

/**
 * Counts one hit for `subject` over a sliding minute kept in Postgres, so every API process
 * shares it. `take_rate_hit` (see the security migration) serialises a subject's hits, so no
 * burst, however it falls across seconds or processes, gets past the limit. Refused requests
 * do not count.
 */
export async function takeHit(em: EntityManager, subject: string, limit: number, now = Date.now()): Promise<RateDecision> {
  const second = Math.floor(now / 1000);
  const [row] = await em.getConnection().execute<{ used: string; oldest: string | null; taken: boolean }[]>(
    'select used, oldest, taken from take_rate_hit(?, ?, ?, ?)',
    [subject, second, WINDOW_SECONDS, limit],
  );
  const used = Number(row?.used ?? 0);
  const reset = Number(row?.oldest ?? second) + WINDOW_SECONDS;
  if (row?.taken) return { allowed: true, limit, remaining: limit - used - 1, reset, retryAfter: 0 };
  return { allowed: false, limit, remaining: 0, reset, retryAfter: Math.max(1, reset - second) };
}
