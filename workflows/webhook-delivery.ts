import { continueAsNew, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { describeFailure } from './failures';

export const webhookDeliveryWorkflowId = (deliveryId: number) => `webhook-delivery-${deliveryId}`;
export const eventRelayWorkflowId = (taskQueue: string) => `event-relay-${taskQueue}`;

const MAX_DELAY_S = 3600;
/** Relay passes in one run before it continues as new (keeps its history short). */
const RELAY_PASSES = 500;

// Attempts do their own HTTP error handling; Temporal retries only what fails around them (the
// database). An attempt lasts at most webhook_timeout_seconds (60) plus its bookkeeping.
const webhooks = proxyActivities<Activities>({
  startToCloseTimeout: '90 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 20 },
});
// A relay pass is short: if its worker dies, the next worker takes over within half a minute.
const relay = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * Seconds before attempt `attempt + 1`: the initial delay doubled per attempt, at most an hour,
 * spread by ±20% so receivers coming back are not hit by every delivery at once; a receiver's
 * Retry-After wins when it asks for longer.
 */
export function retryDelaySeconds(attempt: number, initialSeconds: number, retryAfterSeconds: number | null, random: number): number {
  const backoff = Math.min(MAX_DELAY_S, initialSeconds * 2 ** (attempt - 1)) * (0.8 + 0.4 * random);
  return Math.max(backoff, retryAfterSeconds ?? 0);
}

/**
 * One event to one webhook (`webhook-delivery-<id>`):
 * 1. read how long to keep trying (the `webhook_retry_hours` setting; the test route tries once);
 * 2. attempt: the same bytes and delivery id every time, signed with the current secret;
 * 3. a 2xx ends it delivered; 410 Gone ends it and disables the webhook; anything else waits
 *    (exponential backoff with jitter, or Retry-After) and tries again, until the retry window
 *    closes and the delivery is marked failed.
 * Timers are Temporal's: a worker, API or Temporal restart between attempts loses nothing.
 */
export async function webhookDelivery({ deliveryId }: { deliveryId: number }): Promise<string> {
  try {
    return await deliver(deliveryId);
  } catch (error) {
    // The bookkeeping itself kept failing: the delivery ends failed rather than looking pending forever.
    await webhooks.abandonDelivery({ deliveryId, error: `the delivery could not be carried out: ${describeFailure(error).message}` });
    return 'failed';
  }
}

async function deliver(deliveryId: number): Promise<string> {
  const policy = await webhooks.deliveryPolicy({ deliveryId });
  const deadline = Date.now() + policy.retryHours * 3600_000;
  for (let attempt = 1; ; attempt++) {
    const result = await webhooks.attemptDelivery({ deliveryId, attempt });
    if (result.outcome !== 'retry') return result.outcome;
    if (policy.once) return 'failed';
    const delayMs = retryDelaySeconds(attempt, policy.initialSeconds, result.retryAfterSeconds, Math.random()) * 1000;
    if (Date.now() + delayMs > deadline) {
      await webhooks.abandonDelivery({ deliveryId });
      return 'failed';
    }
    await webhooks.scheduleDeliveryRetry({ deliveryId, at: new Date(Date.now() + delayMs).toISOString() });
    await sleep(delayMs);
  }
}

/**
 * The outbox relay of a task queue (`event-relay-<queue>`): hands new events to their
 * webhooks' delivery workflows, looking again every second when there was nothing to do.
 */
export async function eventRelay(): Promise<void> {
  for (let pass = 0; pass < RELAY_PASSES; pass++) {
    if ((await relay.relayEvents()) === 0) await sleep('1 second');
  }
  await continueAsNew<typeof eventRelay>();
}
