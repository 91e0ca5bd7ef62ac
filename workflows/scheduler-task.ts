import { executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RunTrigger } from '../db/entities/run-lifecycle';
import { SCHEDULER_TASKS, type SchedulerTaskKey } from '../common/scheduler-tasks';
import { RECORD_OPTIONS } from './activity-options';
import { describeFailure, runFailure } from './failures';
import { repositoryCheck } from './repository-maintenance';
import { RepoIdKey, RunKindKey } from './search-attributes';

const records = proxyActivities<Activities>(RECORD_OPTIONS);
// Retention deletes and VACUUM can take a while on a large database.
const maintenance = proxyActivities<Activities>({ startToCloseTimeout: '2 hours', retry: { maximumAttempts: 3 } });

type TaskResult = Record<string, unknown>;

/** A check of every repository, one at a time, each a check run of its own (`repo-check-<repoId>-<runId>`) triggered as the task was. */
async function checkAllRepositories(trigger: RunTrigger): Promise<TaskResult> {
  const { workflowId } = workflowInfo();
  const failed: { id: number; name: string; error: string }[] = [];
  const skipped: number[] = [];
  let checked = 0;
  for (const repo of await records.listRepositoriesToCheck()) {
    const run = await records.claimRepositoryCheck({ repoId: repo.id, taskWorkflowId: workflowId, trigger });
    if (!run) {
      skipped.push(repo.id); // a check of it is already running
      continue;
    }
    try {
      await executeChild(repositoryCheck, {
        workflowId: run.workflowId,
        args: [{ runId: run.runId, repoId: repo.id, repoName: repo.name, readData: false, readDataSubset: null }],
        typedSearchAttributes: [{ key: RunKindKey, value: 'repo-check' }, { key: RepoIdKey, value: String(repo.id) }],
      });
    } catch (error) {
      failed.push({ id: repo.id, name: repo.name, error: describeFailure(error).message });
    }
    checked += 1;
  }
  return { checked, failed, skipped };
}

const TASKS: Record<SchedulerTaskKey, (trigger: RunTrigger) => Promise<TaskResult>> = {
  integrity_check: checkAllRepositories,
  weekly_report: () => maintenance.sendWeeklyReport(),
  db_vacuum: () => maintenance.applyDataRetention(),
  absence_check: () => maintenance.detectAbsences(),
};

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

const SUMMARIES: Record<SchedulerTaskKey, (result: TaskResult) => string> = {
  integrity_check: (r) => `${count(Number(r.checked), 'repository', 'repositories')} checked, ${(r.failed as unknown[]).length} failed, ${(r.skipped as unknown[]).length} skipped (a check already running)`,
  weekly_report: (r) => `report of ${String(r.period_start)} to ${String(r.period_end)} sent`,
  db_vacuum: (r) => `deleted past retention: ${Object.entries(r).map(([table, n]) => `${table} ${String(n)}`).join(', ')}; database vacuumed`,
  absence_check: (r) => `${String(r.checked)} overdue jobs looked at, ${(r.missed as unknown[]).length} missed`,
};

/**
 * One run of a global task (`scheduler-task-<key>-<runId>`, or a firing of its schedule):
 * 1. record the run as started;
 * 2. do the task (an integrity check that finds a damaged repository fails);
 * 3. record the outcome on the run and in the cron log.
 */
export async function schedulerTask({ runId, key, trigger = 'api' }: { runId: string; key: SchedulerTaskKey; trigger?: RunTrigger }): Promise<TaskResult> {
  const { workflowId } = workflowInfo();
  const log = (status: 'success' | 'failed', output: string) =>
    records.recordCronOutcome({ jobType: SCHEDULER_TASKS[key].cronType, jobId: null, repoId: null, hostId: null, status, output, runId, workflowId });
  await records.markOperationStarted({ runId });
  let result: TaskResult;
  try {
    result = await TASKS[key](trigger);
  } catch (error) {
    const failure = describeFailure(error);
    await records.recordOperationFailed({ runId, ...failure });
    await log('failed', failure.message);
    throw runFailure(failure);
  }
  const summary = SUMMARIES[key](result);
  if (key === 'integrity_check' && (result.failed as unknown[]).length > 0) {
    const failure = { code: 'repository_damaged', message: summary };
    await records.recordOperationFailed({ runId, ...failure, result });
    await log('failed', summary);
    throw runFailure(failure);
  }
  await records.recordOperationSucceeded({ runId, result, warnings: [] });
  await log('success', summary);
  return result;
}

/** A firing of a task's schedule: its run, unless one of the task is still in flight (then skipped, and logged). */
export async function scheduledSchedulerTask({ key }: { key: SchedulerTaskKey }): Promise<TaskResult | null> {
  const { workflowId } = workflowInfo();
  const claim = await records.claimScheduledTask({ key, workflowId });
  if ('busy' in claim) {
    await records.recordCronOutcome({
      jobType: SCHEDULER_TASKS[key].cronType, jobId: null, repoId: null, hostId: null, status: 'skipped', runId: null, workflowId,
      output: `skipped: run ${claim.busy} of the task was still in progress`,
    });
    return null;
  }
  return schedulerTask({ runId: claim.runId, key, trigger: 'schedule' });
}
