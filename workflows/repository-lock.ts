import {
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';

/** Backups share a repository; forget, prune and check need it alone. */
export type LockMode = 'shared' | 'exclusive';

export interface LockRequest {
  requestId: string;
  /** The workflow that asked; it is told by signal when the lock is its. */
  holderWorkflowId: string;
  mode: LockMode;
}

export interface RepositoryLockState {
  holders: LockRequest[];
  waiting: LockRequest[];
}

export const acquireLockSignal = defineSignal<[LockRequest]>('acquireRepositoryLock');
export const releaseLockSignal = defineSignal<[string]>('releaseRepositoryLock');
/** The signal that tells one requester its lock is granted: one name per request, so a workflow may wait for several locks. */
export const lockGrantedSignal = (requestId: string) => defineSignal(`repositoryLockGranted:${requestId}`);
export const lockStateQuery = defineQuery<RepositoryLockState>('repositoryLockState');

export function repositoryLockWorkflowId(repoId: number): string {
  return `repo-lock-${repoId}`;
}

const probes = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 5 } });
const requests = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', retry: { maximumInterval: '10 seconds' } });

/** How often the holders are checked for workflows that closed without releasing. */
const HOLDER_CHECK_INTERVAL = '1 minute';
/** How long an unused lock waits for a new request before its workflow ends. */
const IDLE_LINGER = '1 minute';

/**
 * The lock of one repository (workflow `repo-lock-<repoId>`), in the manner of a mutex workflow:
 * 1. requests arrive by signal and wait in arrival order;
 * 2. the head of the queue is granted when it is compatible with the holders (any number of
 *    shared holders, or one exclusive), so an exclusive operation is never starved by backups;
 * 3. a holder releases by signal; a holder whose workflow closed without releasing (terminated,
 *    timed out) is found by a periodic check and released;
 * 4. once nobody holds or waits for a while, the workflow ends; the next request starts it again.
 */
export async function repositoryLock(state: RepositoryLockState = { holders: [], waiting: [] }): Promise<void> {
  const { holders, waiting } = state;
  const known = (id: string) => holders.some((r) => r.requestId === id) || waiting.some((r) => r.requestId === id);
  const drop = (list: LockRequest[], match: (request: LockRequest) => boolean) => {
    for (let i = list.length - 1; i >= 0; i--) if (match(list[i] as LockRequest)) list.splice(i, 1);
  };
  setHandler(acquireLockSignal, (request) => {
    if (!known(request.requestId)) waiting.push(request);
  });
  setHandler(releaseLockSignal, (requestId) => {
    drop(holders, (r) => r.requestId === requestId);
    drop(waiting, (r) => r.requestId === requestId);
  });
  setHandler(lockStateQuery, () => ({ holders, waiting }));

  const grantable = () => {
    const next = waiting[0];
    if (!next) return false;
    return next.mode === 'exclusive' ? holders.length === 0 : holders.every((h) => h.mode === 'shared');
  };

  for (;;) {
    while (grantable()) {
      const next = waiting.shift() as LockRequest;
      holders.push(next);
      try {
        await getExternalWorkflowHandle(next.holderWorkflowId).signal(lockGrantedSignal(next.requestId));
      } catch {
        // The requester is gone (closed while it waited): it holds nothing.
        drop(holders, (r) => r.requestId === next.requestId);
      }
    }
    if (holders.length === 0 && waiting.length === 0) {
      if (!(await condition(() => waiting.length > 0, IDLE_LINGER))) return;
      continue;
    }
    const moved = await condition(grantable, HOLDER_CHECK_INTERVAL);
    if (!moved && holders.length > 0) {
      const closed = new Set(await probes.closedWorkflows({ workflowIds: holders.map((h) => h.holderWorkflowId) }));
      drop(holders, (r) => closed.has(r.holderWorkflowId));
    }
    if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof repositoryLock>({ holders, waiting });
  }
}

/**
 * Runs `body` while holding the repository's lock in `mode`, and releases it afterwards, even
 * when the workflow is cancelled. A workflow may hold the locks of several repositories.
 */
export async function withRepositoryLock<T>(repoId: number, mode: LockMode, body: () => Promise<T>): Promise<T> {
  const requestId = uuid4();
  const grant = lockGrantedSignal(requestId);
  let granted = false;
  setHandler(grant, () => void (granted = true));
  try {
    await requests.requestRepositoryLock({ repoId, request: { requestId, holderWorkflowId: workflowInfo().workflowId, mode } });
    await condition(() => granted);
    return await body();
  } finally {
    setHandler(grant, undefined);
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(repositoryLockWorkflowId(repoId))
        .signal(releaseLockSignal, requestId)
        .catch(() => undefined), // the lock workflow is gone: nothing is held
    );
  }
}
