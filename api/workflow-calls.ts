import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type Workflow, type WorkflowStartOptions } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, type WorkflowResultType } from '@temporalio/common';
import { FailureType } from '../common/failures';
import type { Services } from './context';
import { ApiError } from './errors';

type StartOptions<W extends Workflow> = Pick<WorkflowStartOptions<W>, 'args' | 'typedSearchAttributes' | 'memo' | 'workflowIdConflictPolicy'> & {
  workflowId: string;
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
 * test, a repository init). The work happens on a worker; the API only waits. If no worker
 * finishes it within `waitSeconds`, the request fails with 502 and the workflow times out.
 */
export async function executeWorkflow<W extends Workflow>(
  services: Services,
  workflow: W,
  options: StartOptions<W>,
  waitSeconds = 120,
): Promise<WorkflowResultType<W>> {
  try {
    return await services.temporal.workflow.execute(workflow, {
      ...(options as WorkflowStartOptions<W>),
      taskQueue: services.temporalConfig.taskQueue,
      workflowExecutionTimeout: `${waitSeconds} seconds`,
    });
  } catch (error) {
    if (error instanceof WorkflowFailedError && !applicationFailureOf(error)) {
      throw new ApiError(502, 'worker_unavailable', `no worker completed ${options.workflowId} within ${waitSeconds} s`);
    }
    throw error;
  }
}
