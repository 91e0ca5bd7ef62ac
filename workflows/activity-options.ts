import type { ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_FAILURES } from '../common/failures';

/** Writing a run's record: short, and retried until the database answers. */
export const RECORD_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
};

/**
 * A long restic command (backup, check, forget): heartbeated every few seconds, so a dead
 * worker is noticed within half a minute and the command is tried again elsewhere. Unreachable hosts and locked repositories get a bounded number of spaced retries;
 * wrong passwords, missing repositories and changed host keys fail at once.
 */
export const RESTIC_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '15 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 4,
    nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
  },
};

/** Re-reading the snapshot catalogue after a change. */
export const CATALOGUE_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_FAILURES },
};

/**
 * A pre or post hook: heartbeated like restic. A hook that fails is not run again; one whose
 * worker died is (hooks are meant to be idempotent: stop a service, freeze a file system).
 */
export const HOOK_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_FAILURES },
};
