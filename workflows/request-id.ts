import { defaultPayloadConverter, workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** The header an activity finds the request id in. */
export const REQUEST_ID_HEADER = 'request_id';

/** The API request that started this workflow (its memo's `request_id`), if one did. */
function requestId(): string | undefined {
  const id = workflowInfo().memo?.request_id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Workflow interceptors (a `workflowModules` entry of the worker): the workflow's log lines
 * carry the request id of its memo, its activities receive it in a header, and its child
 * workflows in their memo (the checks of a task run asked through the API, say).
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes: (input, next) => {
        const id = requestId();
        return next(id ? { ...input, request_id: id } : input);
      },
      scheduleActivity: (input, next) => {
        const id = requestId();
        return next(id ? { ...input, headers: { ...input.headers, [REQUEST_ID_HEADER]: defaultPayloadConverter.toPayload(id) } } : input);
      },
      startChildWorkflowExecution: (input, next) => {
        const id = requestId();
        return next(id ? { ...input, options: { ...input.options, memo: { ...input.options.memo, request_id: id } } } : input);
      },
    },
  ],
});
