import { proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { FiringClaim } from '../activities/records';
import type { CronJobType } from '../db/entities/cron-log-entry';
import { RECORD_OPTIONS } from './activity-options';
import { describeFailure } from './failures';

const scheduler = proxyActivities<Activities>(RECORD_OPTIONS);

/** How long a buffered firing waits for the run in its way before it is skipped after all. */
const BUFFER_LIMIT_MS = 24 * 60 * 60 * 1000;
// Polls back off from 10 s to a minute: the buffered run starts within a minute of the way being
// clear, and a day of waiting stays well under Temporal's history limit (about 1,500 polls).
const FIRST_POLL_MS = 10_000;
const LONGEST_POLL_MS = 60_000;

type Started = Extract<FiringClaim, { kind: 'started' }>;

/**
 * One firing of a job's schedule: claim its run (waiting for a run in flight when the job's
 * overlap policy is `buffer_one`, else skipping), carry it out, and write its outcome to the
 * cron log. Temporal's own overlap policy keeps firings of one schedule apart; this also keeps
 * a firing apart from a run asked through the API.
 */
export async function fireJobSchedule<T>(firing: {
  jobType: Extract<CronJobType, 'backup' | 'copy'>;
  jobId: number;
  claim: (workflowId: string) => Promise<FiringClaim>;
  run: (claim: Started) => Promise<T>;
  outcome: (result: T) => string;
}): Promise<T | null> {
  const { workflowId } = workflowInfo();
  const { jobType, jobId } = firing;
  const deadline = Date.now() + BUFFER_LIMIT_MS;
  let claim = await firing.claim(workflowId);
  for (let poll = FIRST_POLL_MS; claim.kind === 'busy' && claim.overlap === 'buffer_one' && Date.now() < deadline; poll = Math.min(poll * 2, LONGEST_POLL_MS)) {
    await sleep(poll);
    claim = await firing.claim(workflowId);
  }
  const entry = { jobType, jobId, workflowId };
  if (claim.kind === 'off') {
    await scheduler.recordCronOutcome({ ...entry, repoId: null, hostId: null, status: 'skipped', runId: null, output: claim.why });
    return null;
  }
  const scope = { repoId: claim.repoId, hostId: claim.hostId };
  if (claim.kind === 'busy') {
    await scheduler.recordCronOutcome({ ...entry, ...scope, status: 'skipped', runId: null, output: `skipped: run ${claim.runId} of the job was still in progress` });
    return null;
  }
  try {
    const result = await firing.run(claim);
    await scheduler.recordCronOutcome({ ...entry, ...scope, status: 'success', runId: claim.runId, output: firing.outcome(result) });
    return result;
  } catch (error) {
    await scheduler.recordCronOutcome({ ...entry, ...scope, status: 'failed', runId: claim.runId, output: describeFailure(error).message });
    throw error;
  }
}
