import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { failureCode } from '../common/failures';

export interface FailureDescription {
  code: string;
  message: string;
}

/** What went wrong in an activity, as the code and message a run records. */
export function describeFailure(error: unknown): FailureDescription {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) return { code: failureCode(cause.type), message: cause.message };
  if (cause instanceof TimeoutFailure) return { code: 'timeout', message: `timed out (${cause.timeoutType})` };
  return { code: 'internal_error', message: error instanceof Error ? error.message : String(error) };
}

/** The failure a run's workflow ends with, once the run has been recorded as failed: never retried. */
export function runFailure(failure: FailureDescription): ApplicationFailure {
  return ApplicationFailure.create({ type: failure.code, message: failure.message, nonRetryable: true });
}

/** The details an activity attached to its typed failure (e.g. a hook's exit code and output). */
export function failureDetails<T>(error: unknown): T | null {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure ? ((cause.details?.[0] as T | undefined) ?? null) : null;
}
