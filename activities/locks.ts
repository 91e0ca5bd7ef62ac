import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { acquireLockSignal, repositoryLock, repositoryLockWorkflowId, type LockRequest } from '../workflows/repository-lock';
import { RepoIdKey, RunKindKey } from '../workflows/search-attributes';
import type { ActivityDeps } from './deps';

/** The Temporal side of repository locks: asking a lock workflow, and checking on its holders. */
export function lockActivities({ temporal }: ActivityDeps) {
  return {
    /** Queues a request with the repository's lock workflow, starting it if it is not running. */
    async requestRepositoryLock({ repoId, request }: { repoId: number; request: LockRequest }): Promise<void> {
      await temporal.workflow.signalWithStart(repositoryLock, {
        workflowId: repositoryLockWorkflowId(repoId),
        taskQueue: Context.current().info.taskQueue,
        args: [{ holders: [], waiting: [] }],
        signal: acquireLockSignal,
        signalArgs: [request],
        typedSearchAttributes: [
          { key: RunKindKey, value: 'repo-lock' },
          { key: RepoIdKey, value: String(repoId) },
        ],
      });
    },

    /** Which of these workflows are no longer running (closed or unknown). */
    async closedWorkflows({ workflowIds }: { workflowIds: string[] }): Promise<string[]> {
      const closed: string[] = [];
      for (const workflowId of new Set(workflowIds)) {
        try {
          const { status } = await temporal.workflow.getHandle(workflowId).describe();
          if (status.name !== 'RUNNING') closed.push(workflowId);
        } catch (error) {
          if (!(error instanceof WorkflowNotFoundError)) throw error;
          closed.push(workflowId);
        }
      }
      return closed;
    },
  };
}
