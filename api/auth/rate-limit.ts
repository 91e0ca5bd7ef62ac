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
 * shares it. The hit is taken first and atomically (concurrent requests cannot both take the
 * last slot), then given back when it went over the limit: refused requests do not count.
 */
export async function takeHit(em: EntityManager, subject: string, limit: number, now = Date.now()): Promise<RateDecision> {
  const second = Math.floor(now / 1000);
  const connection = em.getConnection();
  const [row] = await connection.execute<{ used: string; oldest: string }[]>(
    `with hit as (
       insert into api_rate_hits (subject, second, hits) values (?, ?, 1)
       on conflict (subject, second) do update set hits = api_rate_hits.hits + 1
       returning hits
     ), earlier as (
       select coalesce(sum(hits), 0) as hits, min(second) as oldest
         from api_rate_hits where subject = ? and second > ? and second < ?
     ), expired as (
       delete from api_rate_hits where subject = ? and second <= ?
     )
     select (select hits from hit) + earlier.hits as used, coalesce(earlier.oldest, ?) as oldest from earlier`,
    [subject, second, subject, second - WINDOW_SECONDS, second, subject, second - WINDOW_SECONDS, second],
  );
  const used = Number(row?.used ?? 1);
  const reset = Number(row?.oldest ?? second) + WINDOW_SECONDS;
  if (used <= limit) return { allowed: true, limit, remaining: limit - used, reset, retryAfter: 0 };
  await connection.execute('update api_rate_hits set hits = hits - 1 where subject = ? and second = ?', [subject, second]);
  return { allowed: false, limit, remaining: 0, reset, retryAfter: Math.max(1, reset - second) };
}

