import { ApplicationFailure } from '@temporalio/common';
import { NON_RETRYABLE_FAILURES, type FailureTypeName } from '../common/failures';

/** An ApplicationFailure of a known type; retryable unless the type says another attempt cannot help. */
export function typedFailure(type: FailureTypeName, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: NON_RETRYABLE_FAILURES.includes(type),
    details: details === undefined ? undefined : [details],
  });
}
