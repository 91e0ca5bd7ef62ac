import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupOutcome, BackupPlan } from '../activities/backup';
import type { HookOutcome } from '../activities/hooks';
import type { EventRecord } from '../activities/records';
import type { RetentionOutcome } from '../activities/retention';
import type { RetentionPolicy } from '../common/retention-policy';
import { CATALOGUE_OPTIONS, HOOK_OPTIONS, RECORD_OPTIONS, RESTIC_OPTIONS } from './activity-options';
import { describeFailure, failureDetails, runFailure, type FailureDescription } from './failures';
import { withRepositoryLock } from './repository-lock';

export interface BackupJobRunInput {
  runId: string;
  jobId: number;
  repoId: number;
}

export interface BackupJobRunResult {
  snapshotId: string;
  warnings: string[];
}

type RetentionRecord = Omit<RetentionOutcome, 'warnings' | 'applied'> & { applied: boolean };

const records = proxyActivities<Activities>(RECORD_OPTIONS);
const restic = proxyActivities<Activities>(RESTIC_OPTIONS);
const hooks = proxyActivities<Activities>(HOOK_OPTIONS);
const catalogue = proxyActivities<Activities>(CATALOGUE_OPTIONS);

/**
 * One run of a backup job:
 * 1. record the run as started, and read what the job asks for (hooks, retention);
 * 2. run the pre hook; if it fails, restic never starts and the run fails (`pre_hook_failed`);
 * 3. take the repository's lock, shared with other backups (checks, forgets and prunes wait),
 *    and run restic backup (locally or on the job's host), retrying transient failures;
 * 4. run the post hook, whatever happened since the pre hook (it undoes what the pre hook did);
 *    being a step of this workflow, it runs even if a worker died during the backup. Its
 *    failure is a warning;
 * 5. with a retention policy, take the lock alone and `restic forget` (and prune) the snapshots
 *    of the job's host and paths; a failure here leaves the backup successful, with a warning
 *    and a `backup_job.retention_failure` event;
 * 6. refresh the repository's snapshot catalogue, so the new snapshot is listed (a failure here
 *    is a warning too);
 * 7. record the outcome, success or failure, on the run and the job: the last step, so a run
 *    reported finished has nothing left to do.
 */
export async function backupJobRun(input: BackupJobRunInput): Promise<BackupJobRunResult> {
  const { runId, jobId, repoId } = input;
  await records.markRunStarted({ runId });

  const hookResults: { pre?: HookOutcome; post?: HookOutcome } = {};
  const runHook = async (phase: 'pre' | 'post', argv: string[], env?: Record<string, string>) => {
    try {
      hookResults[phase] = await hooks.runHook({ jobId, runId, phase, argv, env });
    } catch (error) {
      hookResults[phase] = failureDetails<HookOutcome>(error) ?? undefined;
      throw error;
    }
  };

  let plan: BackupPlan | null = null;
  let outcome: BackupOutcome | null = null;
  let failure: FailureDescription | null = null;
  try {
    plan = await records.planBackupRun({ jobId });
  } catch (error) {
    failure = describeFailure(error);
  }
  if (plan?.preHook) {
    try {
      await runHook('pre', plan.preHook);
    } catch (error) {
      const { code, message } = describeFailure(error);
      failure = { code: code === 'hook_failed' ? 'pre_hook_failed' : code, message };
    }
  }
  if (!failure) {
    try {
      outcome = await withRepositoryLock(repoId, 'shared', () => restic.runBackup({ runId, jobId }));
    } catch (error) {
      failure = describeFailure(error);
    }
  }

  const warnings = [...(outcome?.warnings ?? [])];
  if (plan?.postHook) {
    const env = { BCP_RUN_STATUS: failure ? 'failed' : 'success', BCP_SNAPSHOT_ID: outcome?.snapshotId ?? '' };
    await runHook('post', plan.postHook, env).catch((error: unknown) => warnings.push(describeFailure(error).message));
  }
  const hooksRecord = plan?.preHook || plan?.postHook ? hookResults : null;
  if (failure || !outcome || !plan) {
    const recorded = failure ?? { code: 'internal_error', message: 'the backup produced no outcome' };
    await records.recordRunFailed({ runId, ...recorded, hooks: hooksRecord });
    throw runFailure(recorded);
  }

  const events: EventRecord[] = [];
  let retention: RetentionRecord | null = null;
  if (plan.retention) {
    const policy: RetentionPolicy = plan.retention;
    const snapshotId = outcome.snapshotId;
    try {
      const { warnings: forgetWarnings, ...applied } = await withRepositoryLock(repoId, 'exclusive', () => restic.applyRetention({ jobId, snapshotId, policy }));
      warnings.push(...forgetWarnings);
      retention = applied;
    } catch (error) {
      const { code, message: why } = describeFailure(error);
      const message = `the retention policy was not applied: ${why}`;
      warnings.push(message);
      retention = { applied: false, removed_snapshots: [], kept_snapshots: 0, pruned: false };
      events.push({ type: 'backup_job.retention_failure', payload: { id: jobId, run_id: runId, repo_id: repoId, code, message } });
    }
  }

  try {
    await catalogue.refreshSnapshotCatalogue({ repoId, viaJobId: jobId });
  } catch (error) {
    const refreshFailure = describeFailure(error);
    log.warn('snapshot catalogue refresh failed after a successful backup', { failure: refreshFailure });
    warnings.push(`the snapshot list was not refreshed: ${refreshFailure.message}`);
  }
  await records.recordRunSucceeded({ runId, ...outcome, warnings, retention, hooks: hooksRecord, events });
  return { snapshotId: outcome.snapshotId, warnings };
}
