import { continueAsNew, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { describeFailure } from './failures';

export const webhookDeliveryWorkflowId = (deliveryId: number) => `webhook-delivery-${deliveryId}`;
export const eventRelayWorkflowId = (taskQueue: string) => `event-relay-${taskQueue}`;

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
 * One event to one webhook (`webhook-delivery-<id>`):
 * 1. read how long to keep trying (the `webhook_retry_hours` setting; the test route tries once);
 * 2. attempt: the same bytes and delivery id every time, signed with the current secret;
 * 3. a 2xx ends it delivered; 410 Gone ends it and disables the webhook; anything else waits
 *    until the next attempt time the attempt recorded (exponential backoff with jitter, or
 *    Retry-After) and tries again, until the retry window closes and the delivery is failed.
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
  const retry = policy.once ? null : { initialSeconds: policy.initialSeconds, until: new Date(Date.now() + policy.retryHours * 3600_000).toISOString() };
  for (let attempt = 1; ; attempt++) {
    const result = await webhooks.attemptDelivery({ deliveryId, attempt, retry });
    if (result.outcome !== 'retry') return result.outcome;
    await sleep(Math.max(0, Date.parse(result.nextAttemptAt) - Date.now()));
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
