import type { EntityManager } from '@mikro-orm/postgresql';
import { readSettings } from '../common/settings';
import { WINDOW_SECONDS } from './auth/rate-limit';
import { log } from '../common/log';
import { loggedError } from './middleware/errors';

const EVERY_MS = 10 * 60_000;

/**
 * Deletes what the API keeps only for a while: audit entries past `api_log_retention_days`,
 * idempotency keys past `api_idempotency_retention_hours`, and rate-limit hits that left their
 * window. Safe to run from every API process at once, and from the data retention task.
 */
export async function purgeExpiredApiRecords(em: EntityManager): Promise<{ logs: number; idempotencyKeys: number; rateHits: number }> {
  const settings = await readSettings(em, ['api_log_retention_days', 'api_idempotency_retention_hours']);
  const connection = em.getConnection();
  const deleted = (sql: string, params: unknown[]) => connection.execute<{ affectedRows: number }>(sql, params, 'run').then((r) => r.affectedRows);
  const [logs, idempotencyKeys, rateHits] = await Promise.all([
    deleted('delete from api_token_logs where created_at < now() - make_interval(days => ?)', [settings.api_log_retention_days]),
    deleted('delete from api_idempotency_keys where created_at < now() - make_interval(hours => ?)', [settings.api_idempotency_retention_hours]),
    deleted('delete from api_rate_hits where second <= ?', [Math.floor(Date.now() / 1000) - WINDOW_SECONDS]),
  ]);
  return { logs, idempotencyKeys, rateHits };
}

/** Purges now and every ten minutes until the returned function is called. */
export function schedulePurges(em: () => EntityManager): () => void {
  const purge = () => {
    purgeExpiredApiRecords(em()).catch((error: unknown) => log.error({ err: loggedError(error) }, 'purging expired API records failed'));
  };
  purge();
  const timer = setInterval(purge, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
