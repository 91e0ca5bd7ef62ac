import { randomUUID } from 'node:crypto';
import { ServiceError, WorkflowFailedError, type Workflow, type WorkflowClientInterceptor, type WorkflowStartInput, type WorkflowStartOptions } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, type WorkflowResultType } from '@temporalio/common';
import { FailureType } from '../common/failures';
import { log, logFields } from '../common/log';
import type { Services } from './context';
import { ApiError } from './errors';
import { servedByWorker, taskQueuePollers } from './task-queue-pollers';

type StartOptions<W extends Workflow> = Pick<WorkflowStartOptions<W>, 'args' | 'typedSearchAttributes' | 'memo' | 'workflowIdConflictPolicy'> & {
  workflowId: string;
};

/** A start with the id of the request making it in the workflow's memo, when there is one. */
function withRequestId<I extends Pick<WorkflowStartInput, 'options'>>(input: I): I {
  const { request_id: requestId } = logFields();
  return requestId ? { ...input, options: { ...input.options, memo: { ...input.options.memo, request_id: requestId } } } : input;
}

/**
 * Puts `request_id` in the memo of every workflow a request starts, so that the Temporal UI (and
 * the worker's logs of the run) tie it to that request, wherever in the API it is started.
 */
export const requestIdMemo: WorkflowClientInterceptor = {
  startWithDetails: (input, next) => next(withRequestId(input)),
  signalWithStart: (input, next) => next(withRequestId(input)),
};

/** The failure an activity raised inside a workflow that failed, if it was a typed one. */
export function applicationFailureOf(error: unknown): ApplicationFailure | null {
  let cause: unknown = error instanceof WorkflowFailedError ? error.cause : error;
  if (cause instanceof ActivityFailure) cause = cause.cause;
  return cause instanceof ApplicationFailure ? cause : null;
}

/** The API error for a restic operation that failed on the worker: 502 `restic_error`, with a `reason` when it is a known one. */
export function resticError(error: unknown): unknown {
  const failure = applicationFailureOf(error);
  if (!failure) return error;
  const reason = failure.type === FailureType.WrongPassword ? 'wrong_password' : failure.type === FailureType.RepositoryNotFound ? 'repository_not_found' : null;
  return new ApiError(502, 'restic_error', failure.message, reason ? { reason } : {});
}

/** A workflow id for a one-off workflow: `<prefix>-<uuid>`. */
export function oneOffWorkflowId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/**
 * Runs a short workflow and waits for its result, for requests that answer with it (a host
 * test, a repository init). The work happens on a worker; the API only waits. With no worker
 * polling the task queue, the request fails at once with 503 and nothing is started; if no
 * worker finishes it within `waitSeconds`, it fails with 502 and the workflow times out. With
 * Temporal out of reach, 503 `temporal_unavailable`.
 */
export async function executeWorkflow<W extends Workflow>(
  services: Services,
  workflow: W,
  options: StartOptions<W>,
  waitSeconds = 120,
): Promise<WorkflowResultType<W>> {
  const { taskQueue } = services.temporalConfig;
  try {
    if (!servedByWorker(await taskQueuePollers(services, taskQueue))) {
      throw new ApiError(503, 'worker_unavailable', `no worker is polling task queue ${taskQueue}: start one, then retry`);
    }
    return await services.temporal.workflow.execute(workflow, {
      ...(options as WorkflowStartOptions<W>),
      taskQueue,
      workflowExecutionTimeout: `${waitSeconds} seconds`,
    });
  } catch (error) {
    if (error instanceof WorkflowFailedError && !applicationFailureOf(error)) {
      throw new ApiError(502, 'worker_unavailable', `no worker completed ${options.workflowId} within ${waitSeconds} s`);
    }
    if (error instanceof ServiceError) {
      log.error({ err: error, workflow_id: options.workflowId }, 'the workflow service could not be reached');
      throw new ApiError(503, 'temporal_unavailable', 'the workflow service is unavailable');
    }
    throw error;
  }
}
