import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import type { TemporalConfig } from '../common/config';
import { log } from '../common/log';
import { reconcileSchedules } from '../common/schedule-reconcile';
import { temporalConnectionOptions } from '../common/temporal';
import { eventRelay, eventRelayWorkflowId } from '../workflows/webhook-delivery';
import { RunKindKey } from '../workflows/search-attributes';
import { requestIdActivityInterceptor } from './request-id';
import { ensureSearchAttributes } from './search-attributes';

/** Workflow interceptors of every worker; a pre-built bundle must be bundled with them (`workflowInterceptorModules`). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/request-id')];

export interface WorkerSetup {
  temporal: TemporalConfig;
  /** Everything activities need but the Temporal client, which the worker opens itself. */
  activityDeps: Omit<ActivityDeps, 'temporal' | 'temporalConfig'>;
  /** A pre-bundled workflow bundle (tests build one quietly); by default the worker bundles `workflows/`. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/**
 * The one place that wires workflows and activities to a task queue: registers the search
 * attributes runs are found by, connects, and creates the worker. Call `close()` after run().
 */
export async function createWorker(setup: WorkerSetup): Promise<{ worker: Worker; close: () => Promise<void> }> {
  const options = temporalConnectionOptions(setup.temporal);
  const clientConnection = await Connection.connect(options);
  try {
    await ensureSearchAttributes(clientConnection, setup.temporal.namespace);
    const connection = await NativeConnection.connect(options);
    // Activities signal and describe other workflows (repository locks) with this client.
    const temporal = new Client({ connection: clientConnection, namespace: setup.temporal.namespace });
    const worker = await Worker.create({
      connection,
      namespace: setup.temporal.namespace,
      taskQueue: setup.temporal.taskQueue,
      ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
      activities: createActivities({ ...setup.activityDeps, temporal, temporalConfig: setup.temporal }),
      // A run's logs carry the id of the API request that started it.
      interceptors: { activity: [requestIdActivityInterceptor], ...(setup.workflowBundle ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }) },
      // restic progress reaches the run resource through heartbeats: send them every few seconds.
      maxHeartbeatThrottleInterval: '3 seconds',
      defaultHeartbeatThrottleInterval: '3 seconds',
    });
    // The outbox relay runs as long as the task queue has a worker; a second worker finds it running.
    await temporal.workflow.start(eventRelay, {
      workflowId: eventRelayWorkflowId(setup.temporal.taskQueue),
      taskQueue: setup.temporal.taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: [{ key: RunKindKey, value: 'event-relay' }],
    });
    // Schedules that a failed API call left missing or stale are made to match the database, and orphans removed.
    await reconcileSchedules({ temporal, temporalConfig: setup.temporal }, setup.activityDeps.orm.em.fork()).catch((error: unknown) => {
      log.error({ err: error }, 'reconciling schedules failed');
    });
    return {
      worker,
      close: async () => {
        await connection.close();
        await clientConnection.close();
      },
    };
  } catch (error) {
    await clientConnection.close();
    throw error;
  }
}
