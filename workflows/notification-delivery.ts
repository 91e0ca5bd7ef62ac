import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { RECORD_OPTIONS } from './activity-options';
import { describeFailure } from './failures';

export const notificationDeliveryWorkflowId = (deliveryId: number) => `notification-delivery-${deliveryId}`;

const records = proxyActivities<Activities>(RECORD_OPTIONS);
// A channel that is down is tried again for about a day: 10 s, doubling, at most an hour apart.
const channels = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '1 hour', maximumAttempts: 30 },
});

/**
 * One notification to one external channel (`notification-delivery-<id>`): send it, retrying
 * while the channel refuses, then record it delivered, or failed once the retries are spent.
 */
export async function notificationDelivery({ deliveryId }: { deliveryId: number }): Promise<string> {
  try {
    await channels.sendNotification({ deliveryId });
  } catch (error) {
    await records.recordNotificationFailed({ deliveryId, error: describeFailure(error).message });
    return 'failed';
  }
  return 'delivered';
}
