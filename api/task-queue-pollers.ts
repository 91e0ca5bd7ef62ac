import { temporal as proto, type google } from '@temporalio/proto';
import type { Services } from './context';

export type Poller = proto.api.taskqueue.v1.IPollerInfo;

/** How recently a poller must have polled to count (an idle long poll lasts about a minute). */
const POLLER_FRESH_MS = 2 * 60_000;

export const timestampDate = (ts: google.protobuf.ITimestamp | null | undefined): Date | null => {
  if (!ts?.seconds) return null;
  const seconds = typeof ts.seconds === 'number' ? ts.seconds : ts.seconds.toNumber();
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
};

/** The pollers Temporal has seen lately on a task queue: of workflow tasks, and of activity tasks. */
export async function taskQueuePollers(services: Services, taskQueue: string): Promise<{ workflow: Poller[]; activity: Poller[] }> {
  const { TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY } = proto.api.enums.v1.TaskQueueType;
  const [workflow, activity] = await Promise.all([TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY].map(async (taskQueueType) => {
    const described = await services.temporal.workflowService.describeTaskQueue({
      namespace: services.temporalConfig.namespace,
      taskQueue: { name: taskQueue, kind: proto.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType,
    });
    return described.pollers ?? [];
  }));
  return { workflow: workflow ?? [], activity: activity ?? [] };
}

/**
 * Whether a worker serves the task queue: one polled it recently, for either kind of task. A
 * worker whose activity slots are all taken (long backups) stops polling activity tasks for a
 * while, yet still serves the queue: what it is asked waits for a free slot.
 */
export function servedByWorker(pollers: { workflow: Poller[]; activity: Poller[] }): boolean {
  return [...pollers.workflow, ...pollers.activity].some((p) => (timestampDate(p.lastAccessTime)?.getTime() ?? 0) > Date.now() - POLLER_FRESH_MS);
}
