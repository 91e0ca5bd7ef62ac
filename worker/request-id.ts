import { defaultPayloadConverter } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { withLogFields } from '../common/log';
import { REQUEST_ID_HEADER } from '../workflows/request-id';

/**
 * Gives each activity the request id its workflow passed in a header (workflows/request-id.ts):
 * what it logs, and what the SDK logs of it once it runs (completion, failure), carry it.
 */
export const requestIdActivityInterceptor: ActivityInterceptorsFactory = () => {
  // One factory call per activity execution: this is that execution's request id.
  let requestId: string | undefined;
  return {
    inbound: {
      execute: (input, next) => {
        const header = input.headers[REQUEST_ID_HEADER];
        const id = header ? defaultPayloadConverter.fromPayload<unknown>(header) : undefined;
        if (typeof id !== 'string') return next(input);
        requestId = id;
        return withLogFields({ request_id: id }, () => next(input));
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next(requestId ? { ...input, request_id: requestId } : input),
    },
  };
};
