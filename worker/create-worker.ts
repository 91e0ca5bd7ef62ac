import { Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import type { TemporalConfig } from '../common/config';
import { temporalConnectionOptions } from '../common/temporal';
import { ensureSearchAttributes } from './search-attributes';

export interface WorkerSetup {
  temporal: TemporalConfig;
  activityDeps: ActivityDeps;
  /** A pre-bundled workflow bundle (tests build one quietly); by default the worker bundles `workflows/`. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/**
 * The one place that wires workflows and activities to a task queue: registers the search
 * attributes runs are found by, connects, and creates the worker. Close `connection` after run().
 */
export async function createWorker(setup: WorkerSetup): Promise<{ worker: Worker; connection: NativeConnection }> {
  const options = temporalConnectionOptions(setup.temporal);
  const client = await Connection.connect(options);
  try {
    await ensureSearchAttributes(client, setup.temporal.namespace);
  } finally {
    await client.close();
  }
  const connection = await NativeConnection.connect(options);
  const worker = await Worker.create({
    connection,
    namespace: setup.temporal.namespace,
    taskQueue: setup.temporal.taskQueue,
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities(setup.activityDeps),
    // restic progress reaches the run resource through heartbeats: send them every few seconds.
    maxHeartbeatThrottleInterval: '3 seconds',
    defaultHeartbeatThrottleInterval: '3 seconds',
  });
  return { worker, connection };
}
