import { hostNotInScope, repoNotInScope } from '../auth/resource-scope';
import { authOf, type ApiContext } from '../context';
import { scrapeMetrics } from '../metrics';

/**
 * GET /metrics: the Prometheus exposition. Its run counters span every repository and host, so
 * a token (or user) limited to selected ones is refused rather than shown totals beyond its reach.
 */
export async function getMetrics(ctx: ApiContext): Promise<void> {
  const { resources } = authOf(ctx);
  if (resources.repos !== null) throw repoNotInScope();
  if (resources.hosts !== null) throw hostNotInScope();
  const { contentType, text } = await scrapeMetrics(ctx.state.em);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = contentType;
  ctx.body = text;
}
