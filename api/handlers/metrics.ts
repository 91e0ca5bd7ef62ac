import type { ApiContext } from '../context';
import { scrapeMetrics } from '../metrics';

/**
 * GET /metrics: the Prometheus exposition. Its run counters span every repository and host
 * (`x-resource-scope-all`: a caller limited to selected ones is refused).
 */
export async function getMetrics(ctx: ApiContext): Promise<void> {
  const { contentType, text } = await scrapeMetrics(ctx.state.em);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = contentType;
  ctx.body = text;
}
