import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { backupScheduleId, copyScheduleId, isOurScheduleId } from '../../common/schedule-ids';
import { reconcileSchedules } from '../../common/schedule-reconcile';
import { withPgClient } from '../../scripts/lib/pg-client';
import { expectError, expectFieldError, unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';
import { killWorkerProcess, startWorkerProcess } from '../support/worker-process';

/**
 * Job schedules with a cron expression, time zone, jitter, overlap policy, catch-up window and
 * pause; the cron log; reconciliation at worker start; and daylight saving transitions as
 * Temporal computes them.
 */
let h: Harness;
let dir: string;
let repoId: number;
let hook: string;

const idOf = (jobId: number) => backupScheduleId(jobId, h.config.temporal.taskQueue);
const scheduleOf = (jobId: number) => h.services.temporal.schedule.getHandle(idOf(jobId));
const target = () => ({ temporal: h.services.temporal, temporalConfig: h.services.temporalConfig });

interface CronEntry { job_type: string; job_id: number | null; status: string; run_id: string | null; workflow_id: string | null; output: string | null }
const cronLog = async (query = '') => (await h.api.get(`/scheduler/cron-log?per_page=200${query}`)).body.data as CronEntry[];

async function source(): Promise<string> {
  const path = join(dir, `src-${unique()}`);
  await mkdir(path);
  await writeFile(join(path, 'file'), `data ${path}\n`);
  return path;
}

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-scheduler-'));
  repoId = (await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, 'repo'), password: 'pw', init: true })).body.data.id;
  // A pre hook that holds a run for a while, to have one in flight.
  hook = join(dir, 'hold.sh');
  await writeFile(hook, '#!/bin/sh\nsleep "$1"\n');
  await chmod(hook, 0o755);
  expect((await h.api.put('/settings/hook_allowed_commands', { value: [hook] })).status).toBe(200);
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a cron schedule in its own time zone, with jitter, overlap, catch-up and pause, is what Temporal holds', async () => {
  const job = (await h.api.post('/backup-jobs', {
    name: `cron-${unique()}`, repo_id: repoId, source_paths: [await source()], schedule_enabled: true,
    schedule_cron: '30 2 * * 1-5', schedule_timezone: 'America/New_York', schedule_jitter_seconds: 120,
    schedule_overlap: 'buffer_one', schedule_catchup_minutes: 15,
  })).body.data;
  expect(job).toMatchObject({ schedule_cron: '30 2 * * 1-5', schedule_timezone: 'America/New_York', schedule_jitter_seconds: 120, schedule_overlap: 'buffer_one', schedule_catchup_minutes: 15, schedule_paused: false });
  const described = await scheduleOf(job.id).describe();
  expect(described.spec.timezone).toBe('America/New_York');
  expect(described.spec.jitter).toBe(120_000);
  expect(described.policies).toMatchObject({ overlap: ScheduleOverlapPolicy.BUFFER_ONE, catchupWindow: 15 * 60_000 });
  // 02:30 in New York on weekdays (07:30 UTC in winter), each delayed by its jitter of up to 2 minutes.
  for (const time of described.info.nextActionTimes.slice(0, 5)) {
    const local = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(time);
    expect(local).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 02:3[0-2]$/);
  }
  const listed = ((await h.api.get('/scheduler/backup-schedules?per_page=200')).body.data as Record<string, unknown>[]).find((s) => s.id === job.id);
  expect(listed).toMatchObject({ schedule_summary: 'cron 30 2 * * 1-5', cron_expression: '30 2 * * 1-5', timezone: 'America/New_York', missed_at: null });
  expect(listed?.next_runs).toEqual(described.info.nextActionTimes.slice(0, 5).map((t) => t.toISOString()));

  // Paused: the schedule stays, fires no more, and lists no next times; resumed: back.
  expect((await h.api.patch(`/backup-jobs/${job.id}`, { schedule_paused: true })).body.data.schedule_paused).toBe(true);
  expect((await scheduleOf(job.id).describe()).state.paused).toBe(true);
  const paused = ((await h.api.get('/scheduler/backup-schedules?per_page=200')).body.data as Record<string, unknown>[]).find((s) => s.id === job.id);
  expect(paused).toMatchObject({ schedule_paused: true, next_run: null, next_runs: [], schedule_id: idOf(job.id) });
  await h.api.patch(`/backup-jobs/${job.id}`, { schedule_paused: false, schedule_overlap: 'skip', schedule_cron: null, schedule_hour: 4, schedule_days: '6', schedule_jitter_seconds: 0 });
  const resumed = await scheduleOf(job.id).describe();
  expect(resumed.state.paused).toBe(false);
  expect(resumed.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
  expect(new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(resumed.info.nextActionTimes[0])).toBe('Sat 04:00');
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('a bad cron expression or time zone is a 422 that changes nothing', async () => {
  const before = await h.count('backup_jobs');
  const base = { name: `bad-${unique()}`, repo_id: repoId, source_paths: ['/srv'], schedule_enabled: true };
  // The last two are well formed, but no such day ever comes: a schedule that would never fire.
  for (const cron of ['61 * * * *', '* * *', '5-1 * * * *', '@sometimes', '*/0 * * * *', '* * * FOO *', '0 0 31 2 *', '0 0 31 4,6,9,11 *']) {
    expectFieldError(await h.api.post('/backup-jobs', { ...base, schedule_cron: cron }), 'schedule_cron');
  }
  expectFieldError(await h.api.post('/backup-jobs', { ...base, schedule_timezone: 'Mars/Olympus' }), 'schedule_timezone');
  expectFieldError(await h.api.post('/backup-jobs', { ...base, schedule_overlap: 'allow_all' }), 'schedule_overlap');
  expectFieldError(await h.api.post('/backup-jobs', { ...base, schedule_jitter_seconds: 3601 }), 'schedule_jitter_seconds');
  expect(await h.count('backup_jobs')).toBe(before);
  // Shorthands and names in any case are stored as Temporal reads them.
  const daily = (await h.api.post('/backup-jobs', { ...base, name: `daily-${unique()}`, schedule_cron: '  @DAILY ' })).body.data;
  expect(daily.schedule_cron).toBe('@daily');
  expect((await scheduleOf(daily.id).describe()).info.nextActionTimes[0]?.getUTCHours()).toBe(0);
  await h.api.delete(`/backup-jobs/${daily.id}`);
  const job = (await h.api.post('/backup-jobs', { ...base, schedule_cron: '0 3 * jan-mar mon' })).body.data;
  expectFieldError(await h.api.patch(`/backup-jobs/${job.id}`, { schedule_cron: '0 25 * * *' }), 'schedule_cron');
  expect((await h.api.get(`/backup-jobs/${job.id}`)).body.data.schedule_cron).toBe('0 3 * JAN-MAR MON');
  expect((await scheduleOf(job.id).describe()).info.nextActionTimes[0]?.getUTCDay()).toBe(1);
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('a time zone in any letter case, or an alias, is stored and given to Temporal as the tz database writes it', async () => {
  // Temporal reads zone names case-sensitively: `europe/paris` would be saved but never applied.
  const job = (await h.api.post('/backup-jobs', { name: `tz-${unique()}`, repo_id: repoId, source_paths: ['/srv'], schedule_enabled: true, schedule_hour: 5, schedule_timezone: 'europe/paris' })).body.data;
  expect(job.schedule_timezone).toBe('Europe/Paris');
  expect((await scheduleOf(job.id).describe()).spec.timezone).toBe('Europe/Paris');
  const patched = await h.api.patch(`/backup-jobs/${job.id}`, { schedule_timezone: 'US/Eastern' });
  expect(patched.status).toBe(200);
  expect(patched.body.data.schedule_timezone).toBe('America/New_York');
  expect((await scheduleOf(job.id).describe()).spec.timezone).toBe('America/New_York');

  // The shared setting too: every schedule following it is applied with the canonical name.
  expect((await h.api.put('/settings/timezone', { value: 'ASIA/TOKYO' })).body.data.value).toBe('Asia/Tokyo');
  try {
    expect((await h.api.patch(`/backup-jobs/${job.id}`, { schedule_timezone: null })).status).toBe(200);
    expect((await scheduleOf(job.id).describe()).spec.timezone).toBe('Asia/Tokyo');
  } finally {
    await h.api.put('/settings/timezone', { value: 'UTC' });
  }
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('a firing while the job is paused (its pause not yet in Temporal) is skipped, logged, and pauses the schedule', async () => {
  const job = (await h.api.post('/backup-jobs', { name: `paused-${unique()}`, repo_id: repoId, source_paths: [await source()], schedule_enabled: true })).body.data;
  await h.sql('update backup_jobs set schedule_paused = true where id = ?', [job.id]); // as if applying the pause had failed
  expect((await scheduleOf(job.id).describe()).state.paused).toBe(false);
  await scheduleOf(job.id).trigger();
  const skipped = await waitFor(async () => (await cronLog('&status=skipped')).find((e) => e.job_id === job.id), 'the skipped firing', 60_000);
  expect(skipped).toMatchObject({ run_id: null, output: 'the job\u2019s schedule is paused' });
  expect((await scheduleOf(job.id).describe()).state.paused).toBe(true);
  expect((await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data).toEqual([]);
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('a schedule due within the test fires a real run, seen in the cron log and the job\u2019s runs', async () => {
  const job = (await h.api.post('/backup-jobs', { name: `minutely-${unique()}`, repo_id: repoId, source_paths: [await source()], schedule_enabled: true, schedule_cron: '* * * * *' })).body.data;
  const entry = await waitFor(async () => (await cronLog('&job_type=backup')).find((e) => e.job_id === job.id && e.status === 'success'), 'the firing in the cron log', 150_000, 1000);
  expect(entry.workflow_id?.startsWith(`${idOf(job.id)}-`)).toBe(true);
  expect(entry.output).toMatch(/^snapshot [0-9a-f]{8} saved/);
  const runs = (await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data as { id: string; trigger: string; status: string; workflow_id: string }[];
  expect(runs.find((r) => r.id === entry.run_id)).toMatchObject({ trigger: 'schedule', status: 'success', workflow_id: entry.workflow_id });
  // The same entries through the logs route.
  expect(((await h.api.get('/logs/cron?job_type=backup&per_page=200')).body.data as CronEntry[]).some((e) => e.run_id === entry.run_id)).toBe(true);
  // A caller limited to a host does not see a local job's entries (nor a repository-limited one another repository's);
  // neither sees the global entries (reconciliations, tasks), which speak of every repository.
  expect((await cronLog()).some((e) => e.job_id === null)).toBe(true);
  const hostLimited = await h.createCaller({ user: { hostScopeMode: 'selected', hostScopeIds: [] } });
  expect((await hostLimited.api.get('/scheduler/cron-log?per_page=200')).body.data).toEqual([]);
  const otherRepo = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoId + 100000] } });
  expect((await otherRepo.api.get('/logs/cron?per_page=200')).body.data).toEqual([]);
  const recentJobs = (await h.api.get('/jobs/recent?kind=backup&per_page=200')).body.data as { id: string; trigger: string; workflow_id: string }[];
  expect(recentJobs.find((r) => r.id === entry.run_id)).toMatchObject({ trigger: 'schedule', workflow_id: entry.workflow_id });
  const recent = (await scheduleOf(job.id).describe()).info.recentActions;
  const listed = ((await h.api.get('/scheduler/backup-schedules?per_page=200')).body.data as { id: number; recent_runs: { workflow_id: string }[] }[]).find((s) => s.id === job.id);
  expect(listed?.recent_runs.map((r) => r.workflow_id)).toEqual(recent.slice(-10).reverse().map((a) => (a.action as { workflow: { workflowId: string } }).workflow.workflowId));
  await h.api.delete(`/backup-jobs/${job.id}`);
});

describe('the overlap policy, when a run of the job is still going', () => {
  async function heldRun(overlap: 'skip' | 'buffer_one') {
    const job = (await h.api.post('/backup-jobs', {
      name: `held-${unique()}`, repo_id: repoId, source_paths: [await source()], pre_hook_command: [hook, '6'],
      schedule_enabled: true, schedule_overlap: overlap,
    })).body.data;
    const apiRun = (await h.api.post(`/backup-jobs/${job.id}/run`)).body.data;
    await waitFor(async () => ((await h.api.get(`/backup-jobs/${job.id}/runs/${apiRun.id}`)).body.data.status === 'running' ? true : undefined), 'the API run to start', 30_000);
    await scheduleOf(job.id).trigger();
    return { job, apiRun };
  }

  test('skip: the firing is skipped and logged, never a second run at once', async () => {
    const { job, apiRun } = await heldRun('skip');
    const skipped = await waitFor(async () => (await cronLog('&status=skipped')).find((e) => e.job_id === job.id), 'the skipped firing', 60_000);
    expect(skipped.output).toContain(apiRun.id);
    await waitFor(async () => ((await h.api.get(`/backup-jobs/${job.id}/runs/${apiRun.id}`)).body.data.status === 'success' ? true : undefined), 'the API run to end', 60_000);
    expect(((await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data as unknown[]).length).toBe(1);
    await h.api.delete(`/backup-jobs/${job.id}`);
  });

  test('buffer_one: the firing waits for the run in its way, then runs', async () => {
    const { job, apiRun } = await heldRun('buffer_one');
    const runs = await waitFor(async () => {
      const list = (await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data as { id: string; trigger: string; status: string; started_at: string; finished_at: string }[];
      return list.length === 2 && list.every((r) => r.status === 'success') ? list : undefined;
    }, 'both runs to succeed', 120_000, 500);
    const api = runs.find((r) => r.id === apiRun.id);
    const scheduled = runs.find((r) => r.trigger === 'schedule');
    expect(new Date(scheduled?.started_at as string).getTime()).toBeGreaterThanOrEqual(new Date(api?.finished_at as string).getTime());
    // The firing writes its cron log entry once its run has recorded its outcome.
    const entry = await waitFor(async () => (await cronLog()).find((e) => e.job_id === job.id), 'the firing in the cron log', 30_000);
    expect(entry).toMatchObject({ status: 'success', run_id: scheduled?.id });
    await h.api.delete(`/backup-jobs/${job.id}`);
  });
});

test('a copy run lost with its workflow is closed as such and does not block its job\u2019s firings', async () => {
  // A copy needs something to copy.
  const job = (await h.api.post('/backup-jobs', { name: `src-${unique()}`, repo_id: repoId, source_paths: [await source()] })).body.data;
  expect((await h.api.post(`/backup-jobs/${job.id}/run?wait=60`)).body.data.status).toBe('success');
  const copy = (await h.api.post('/copy-jobs', {
    name: `copy-${unique()}`, source_repo_id: repoId, dest_path: join(dir, `copy-${unique()}`), dest_password: 'pw', init_destination: true, schedule_enabled: true,
  })).body.data;
  const [lost] = await h.sql<{ id: string }>(
    "insert into operation_runs (id, kind, trigger, job_id, repo_id, status, workflow_id, queued_at, params) values (gen_random_uuid(), 'copy', 'api', ?, ?, 'running', ?, now() - interval '1 hour', '{}') returning id",
    [copy.id, repoId, `copy-gone-${unique()}`],
  );
  await h.sql('update copy_jobs set last_status = ?, last_run_id = ? where id = ?', ['running', lost?.id, copy.id]);
  await h.services.temporal.schedule.getHandle(copyScheduleId(copy.id, h.config.temporal.taskQueue)).trigger();
  const entry = await waitFor(async () => (await cronLog('&job_type=copy')).find((e) => e.job_id === copy.id && e.status === 'success'), 'the scheduled copy', 90_000);
  const runs = (await h.api.get(`/repos/${repoId}/runs?kind=copy&per_page=200`)).body.data as { id: string; status: string; failure: { code: string } | null }[];
  expect(runs.find((r) => r.id === lost?.id)).toMatchObject({ status: 'failed', failure: { code: 'workflow_lost' } });
  expect(runs.find((r) => r.id === entry.run_id)).toMatchObject({ status: 'success' });
  await h.api.delete(`/copy-jobs/${copy.id}`);
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('reconciliation restores a missing schedule, removes an orphan, makes no duplicate, and is logged', async () => {
  const job = (await h.api.post('/backup-jobs', { name: `rec-${unique()}`, repo_id: repoId, source_paths: ['/srv'], schedule_enabled: true, schedule_hour: 6 })).body.data;
  await scheduleOf(job.id).delete(); // lost out of band
  const orphanId = 999_999_000 + Math.floor(Math.random() * 999);
  const { temporalConfig } = h.services;
  await h.services.temporal.schedule.create({
    scheduleId: idOf(orphanId), spec: { intervals: [{ every: '1 day' }] },
    action: { type: 'startWorkflow', workflowType: 'scheduledBackupRun', args: [{ jobId: orphanId }], taskQueue: temporalConfig.taskQueue },
  });
  // Another deployment's schedule on the same namespace (the default task queue's) is not ours to remove.
  const foreign = await h.services.temporal.schedule.create({
    scheduleId: `backup-job-schedule-${orphanId}`, spec: { intervals: [{ every: '1 day' }] },
    action: { type: 'startWorkflow', workflowType: 'scheduledBackupRun', args: [{ jobId: orphanId }], taskQueue: 'someone-else' },
  });

  // One made before ids carried the task queue, for this deployment's queue: its successor has our id.
  const legacyId = `backup-job-schedule-${job.id}`;
  await h.services.temporal.schedule.create({
    scheduleId: legacyId, spec: { intervals: [{ every: '1 day' }] },
    action: { type: 'startWorkflow', workflowType: 'scheduledBackupRun', args: [{ jobId: job.id }], taskQueue: temporalConfig.taskQueue },
  });

  const first = await reconcileSchedules(target(), h.services.orm.em.fork());
  expect(first.failed).toEqual([]);
  expect(first.removed.sort()).toEqual([idOf(orphanId), legacyId].sort());
  expect((await scheduleOf(job.id).describe()).info.nextActionTimes[0]?.getUTCHours()).toBe(6);
  await expect(h.services.temporal.schedule.getHandle(idOf(orphanId)).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  await foreign.describe();

  const ours = async () => {
    const ids: string[] = [];
    for await (const s of h.services.temporal.schedule.list()) if (isOurScheduleId(s.scheduleId, temporalConfig.taskQueue)) ids.push(s.scheduleId);
    return ids.sort();
  };
  const before = await ours();
  const second = await reconcileSchedules(target(), h.services.orm.em.fork());
  expect(second.removed).toEqual([]);
  expect(await ours()).toEqual(before);
  expect(new Set(before).size).toBe(before.length);

  const logged = (await cronLog('&job_type=cron_run')).slice(0, 2);
  expect(logged.map((e) => e.status)).toEqual(['success', 'success']);
  expect(logged[1]?.output).toContain(idOf(orphanId));
  const overview = (await h.api.get('/scheduler/tasks')).body.data;
  expect(overview.engine).toMatchObject({ type: 'temporal', reachable: true, task_queue: temporalConfig.taskQueue, schedules_total: before.length });
  expect(Date.parse(overview.engine.reconciled_at)).toBeGreaterThan(Date.now() - 120_000);

  // A worker starting does the same: the lost schedule is back and the orphan gone, nothing doubled.
  await scheduleOf(job.id).delete();
  await h.services.temporal.schedule.create({
    scheduleId: idOf(orphanId), spec: { intervals: [{ every: '1 day' }] },
    action: { type: 'startWorkflow', workflowType: 'scheduledBackupRun', args: [{ jobId: orphanId }], taskQueue: temporalConfig.taskQueue },
  });
  const reconciled = await h.count('cron_log', "job_type = 'cron_run'");
  const worker = await startWorkerProcess(h);
  try {
    await waitFor(async () => ((await h.count('cron_log', "job_type = 'cron_run'")) > reconciled ? true : undefined), 'the worker to reconcile', 60_000);
  } finally {
    await killWorkerProcess(worker);
  }
  expect(await ours()).toEqual(before);
  await foreign.delete();
  await h.api.delete(`/backup-jobs/${job.id}`);
});

describe('daylight saving transitions, as Temporal computes the next action times', () => {
  // Temporal lists the next times from now; a twin of the job's schedule starting just before a
  // transition shows what the job's own schedule will do then.
  async function timesAround(startAt: string, cron: string, timezone: string) {
    const job = (await h.api.post('/backup-jobs', { name: `dst-${unique()}`, repo_id: repoId, source_paths: ['/srv'], schedule_enabled: true, schedule_cron: cron, schedule_timezone: timezone })).body.data;
    const { spec } = await scheduleOf(job.id).describe();
    const twin = await h.services.temporal.schedule.create({
      scheduleId: `dst-probe-${unique()}`,
      spec: { ...spec, startAt: new Date(startAt) },
      action: { type: 'startWorkflow', workflowType: 'scheduledBackupRun', args: [{ jobId: job.id }], taskQueue: `nobody-${unique()}` },
      state: { paused: true },
    });
    try {
      return (await twin.describe()).info.nextActionTimes.map((t) => t.toISOString());
    } finally {
      await twin.delete();
      await h.api.delete(`/backup-jobs/${job.id}`);
    }
  }

  test('spring forward in Europe/Paris: 02:30 does not exist on 28 March 2027, so that day has no run; the offset moves from +1 to +2', async () => {
    const times = await timesAround('2027-03-26T00:00:00Z', '30 2 * * *', 'Europe/Paris');
    expect(times.slice(0, 4)).toEqual(['2027-03-26T01:30:00.000Z', '2027-03-27T01:30:00.000Z', '2027-03-29T00:30:00.000Z', '2027-03-30T00:30:00.000Z']);
  });

  test('fall back in America/New_York: a 09:00 job keeps 09:00 local across 7 November 2027', async () => {
    const times = await timesAround('2027-11-05T00:00:00Z', '0 9 * * *', 'America/New_York');
    expect(times.slice(0, 4)).toEqual(['2027-11-05T13:00:00.000Z', '2027-11-06T13:00:00.000Z', '2027-11-07T14:00:00.000Z', '2027-11-08T14:00:00.000Z']);
  });

  test('fall back in Europe/Paris: 02:30 happens twice on 31 October 2027, and the job runs once, at the second (01:30 UTC)', async () => {
    const times = await timesAround('2027-10-30T00:00:00Z', '30 2 * * *', 'Europe/Paris');
    expect(times.slice(0, 3)).toEqual(['2027-10-30T00:30:00.000Z', '2027-10-31T01:30:00.000Z', '2027-11-01T01:30:00.000Z']);
  });
});

describe('the global tasks', () => {
  test('are listed with their schedules; enabling one in the settings makes its Temporal Schedule', async () => {
    const overview = (await h.api.get('/scheduler/tasks')).body.data;
    expect(overview.global.map((t: { key: string }) => t.key)).toEqual(['weekly_report', 'integrity_check', 'db_vacuum', 'absence_check']);
    expect(overview.global.find((t: { key: string }) => t.key === 'absence_check')).toMatchObject({ enabled: true, hour: null, cron_expression: '*/10 * * * *', next_run_at: expect.any(String) });
    expect(overview.global.find((t: { key: string }) => t.key === 'integrity_check')).toMatchObject({ enabled: false, schedule_id: null, next_run_at: null });
    expect(overview).toMatchObject({ timezone: 'UTC', timezone_label: 'UTC (UTC+00:00)' });

    await h.api.put('/settings/integrity_check_day', { value: 3 });
    await h.api.put('/settings/integrity_check_hour', { value: 1 });
    await h.api.put('/settings/integrity_check_enabled', { value: true });
    try {
      const task = ((await h.api.get('/scheduler/tasks')).body.data.global as Record<string, unknown>[]).find((t) => t.key === 'integrity_check');
      expect(task).toMatchObject({ enabled: true, days: [3], hour: 1, cron_expression: '0 1 * * 3', schedule_id: expect.stringMatching(/^scheduler-task-schedule-integrity_check/) });
      const next = new Date(task?.next_run_at as string);
      expect([next.getUTCDay(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([3, 1, 0]);
    } finally {
      await h.api.put('/settings/integrity_check_enabled', { value: false });
    }
    const task = ((await h.api.get('/scheduler/tasks')).body.data.global as Record<string, unknown>[]).find((t) => t.key === 'integrity_check');
    expect(task).toMatchObject({ enabled: false, schedule_id: null });
  });

  test('run now: unknown keys are 404, scoped callers 403, and the integrity check checks every repository', async () => {
    expectError(await h.api.post('/scheduler/tasks/nope/run'), 404, 'unknown_task');
    const scoped = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoId] } });
    expectError(await scoped.api.post('/scheduler/tasks/integrity_check/run'), 403, 'repo_not_in_scope');
    const second = (await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, `repo-${unique()}`), password: 'pw', init: true })).body.data.id;

    const requestId = `task-run-${unique()}`;
    const run = (await h.api.post('/scheduler/tasks/integrity_check/run?wait=120', {}, { headers: { 'x-request-id': requestId } })).body.data;
    expect(run).toMatchObject({ kind: 'scheduler_task', status: 'success', trigger: 'api' });
    expect(run.result).toMatchObject({ checked: 2, failed: [], skipped: [] });
    for (const id of [repoId, second]) {
      const checks = (await h.api.get(`/repos/${id}/runs?kind=repo_check`)).body.data as { status: string; trigger: string; workflow_id: string }[];
      expect(checks[0]).toMatchObject({ status: 'success', trigger: 'api' }); // as the task run was
      // Each check is a child workflow of the task run, and carries the request that asked for it.
      expect((await h.services.temporal.workflow.getHandle(checks[0]?.workflow_id as string).describe()).memo).toMatchObject({ request_id: requestId });
    }
    expect((await cronLog('&job_type=auto_check'))[0]).toMatchObject({ status: 'success', run_id: run.id, output: '2 repositories checked, 0 failed, 0 skipped (a check already running)' });
    await h.api.delete(`/repos/${second}`);
  });

  test('db_vacuum deletes what is past its retention and keeps the rest', async () => {
    const [admin] = await h.sql<{ user_id: number; id: number }>('select user_id, id from api_tokens order by id limit 1');
    await h.sql(`insert into api_token_logs (token_id, user_id, method, endpoint, status, ip, latency_ms, created_at) values (?, ?, 'GET', '/old', 200, '127.0.0.1', 1, now() - interval '40 days'), (?, ?, 'GET', '/new', 200, '127.0.0.1', 1, now())`, [admin?.id, admin?.user_id, admin?.id, admin?.user_id]);
    await h.sql(`insert into app_notifications (user_id, profile_key, event_key, title, body, severity, is_read, created_at) values
      (?, 'backup_job', 'failure', 'old read', 'b', 'error', true, now() - interval '100 days'),
      (?, 'backup_job', 'failure', 'old unread', 'b', 'error', false, now() - interval '100 days')`, [admin?.user_id, admin?.user_id]);
    await h.sql(`insert into cron_log (job_type, status, output, ran_at) values ('backup', 'success', 'ancient', now() - interval '400 days')`);
    // Two runs of a job, both finished long ago: the job keeps its latest one.
    const job = (await h.api.post('/backup-jobs', { name: `old-${unique()}`, repo_id: repoId, source_paths: ['/srv'] })).body.data;
    const [older, latest] = [`${unique()}`, `${unique()}`];
    for (const [tag, days] of [[older, 500], [latest, 450]] as const) {
      await h.sql(`insert into backup_job_runs (id, job_id, repo_id, status, trigger, workflow_id, queued_at, finished_at)
        values (gen_random_uuid(), ?, ?, 'success', 'api', ?, now() - make_interval(days => ?), now() - make_interval(days => ?))`, [job.id, repoId, `old-run-${tag}`, days, days]);
    }
    await h.sql("update backup_jobs set last_run_id = (select id from backup_job_runs where workflow_id = ?) where id = ?", [`old-run-${latest}`, job.id]);
    // An old event the relay has not handed on yet is kept; a relayed one goes.
    await h.sql(`insert into events (type, payload, created_at, relayed_at) values ('repo.created', '{"old":"relayed"}', now() - interval '400 days', now() - interval '400 days'),
      ('repo.created', '{"old":"waiting"}', now() - interval '400 days', null)`);

    // The worker's relay would hand the waiting event on within seconds; a row lock held meanwhile keeps it waiting (the relay skips locked rows).
    const run = await withPgClient(h.config.databaseUrl, async (client) => {
      await client.query('begin');
      await client.query("select id from events where payload->>'old' = 'waiting' for update");
      try {
        return (await h.api.post('/scheduler/tasks/db_vacuum/run?wait=120')).body.data;
      } finally {
        await client.query('rollback');
      }
    });
    expect(run.status).toBe('success');
    expect(run.result).toMatchObject({ api_token_logs: 1, notifications: 1, cron_log: 1 });
    expect(await h.count('api_token_logs', "endpoint = '/old'")).toBe(0);
    expect(await h.count('api_token_logs', "endpoint = '/new'")).toBe(1);
    expect(await h.count('app_notifications', "title = 'old unread'")).toBe(1);
    expect(await h.count('cron_log', "output = 'ancient'")).toBe(0);
    expect(await h.count('backup_job_runs', 'workflow_id = ?', [`old-run-${older}`])).toBe(0);
    expect(await h.count('backup_job_runs', 'workflow_id = ?', [`old-run-${latest}`])).toBe(1);
    expect((await h.api.get(`/backup-jobs/${job.id}`)).body.data.last_run_id).not.toBeNull();
    expect(await h.count('events', "payload->>'old' = 'relayed'")).toBe(0);
    expect(await h.count('events', "payload->>'old' = 'waiting'")).toBe(1);
    await h.sql("delete from events where payload->>'old' = 'waiting'");
    await h.api.delete(`/backup-jobs/${job.id}`);
  });

  test('the weekly report counts the week\u2019s runs and tells those who read statistics', async () => {
    // It speaks of every repository: a user limited to some does not get it.
    const scoped = await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [repoId] } });
    const run = (await h.api.post('/scheduler/tasks/weekly_report/run?wait=60')).body.data;
    expect(run.status).toBe('success');
    const [counts] = await h.sql<{ total: number; success: number; failed: number }>(
      "select count(*)::int as total, (count(*) filter (where status = 'success'))::int as success, (count(*) filter (where status = 'failed'))::int as failed from backup_job_runs where queued_at >= now() - interval '7 days'");
    expect(run.result.backups).toEqual(counts);
    const [event] = await h.sql<{ payload: { backups: unknown } }>("select payload from events where type = 'report.weekly' order by id desc limit 1");
    expect(event?.payload.backups).toEqual(counts);
    const inbox = await waitFor(async () => {
      const list = (await h.api.get('/notifications')).body.data as { profile_key: string; title: string }[];
      return list.find((n) => n.profile_key === 'weekly_report');
    }, 'the weekly report in the inbox', 60_000);
    expect(inbox.title).toBe(`Weekly report: ${counts?.success} of ${counts?.total} backups succeeded`);
    expect(await h.count('app_notifications', "user_id = ? and profile_key = 'weekly_report'", [scoped.userId])).toBe(0);
  });
});

test('absence detection: a run still going is not a missed one, even one queued before the due time', async () => {
  const job = (await h.api.post('/backup-jobs', { name: `long-${unique()}`, repo_id: repoId, source_paths: [await source()], pre_hook_command: [hook, '6'], schedule_enabled: true })).body.data;
  const apiRun = (await h.api.post(`/backup-jobs/${job.id}/run`)).body.data;
  await h.sql("update backup_job_runs set queued_at = now() - interval '3 hours' where id = ?", [apiRun.id]);
  await h.sql("update backup_jobs set schedule_due_at = now() - interval '2 hours' where id = ?", [job.id]);
  expect((await h.api.post('/scheduler/tasks/absence_check/run?wait=60')).body.data.result.missed).toEqual([]);
  expect(await h.count('events', "type = 'backup_job.missed' and (payload->>'id')::int = ?", [job.id])).toBe(0);
  await waitFor(async () => ((await h.api.get(`/backup-jobs/${job.id}/runs/${apiRun.id}`)).body.data.status === 'success' ? true : undefined), 'the run to end', 60_000);
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('absence detection: a job whose due run did not come is reported once, and clears when a run succeeds', async () => {
  const job = (await h.api.post('/backup-jobs', { name: `absent-${unique()}`, repo_id: repoId, source_paths: [await source()], schedule_enabled: true, schedule_hour: 5 })).body.data;
  // Due two hours ago, and nothing ran (Temporal or the workers were away).
  await h.sql("update backup_jobs set schedule_due_at = now() - interval '2 hours' where id = ?", [job.id]);
  const run = (await h.api.post('/scheduler/tasks/absence_check/run?wait=60')).body.data;
  expect(run.status).toBe('success');
  expect(run.result.missed).toEqual([expect.objectContaining({ type: 'backup', id: job.id })]);
  const [event] = await h.sql<{ payload: Record<string, unknown> }>("select payload from events where type = 'backup_job.missed' order by id desc limit 1");
  expect(event?.payload).toMatchObject({ id: job.id, name: job.name, repo_id: repoId, grace_minutes: 60 });
  const listed = () => h.api.get('/scheduler/backup-schedules?per_page=200').then((r) => (r.body.data as { id: number; missed_at: string | null }[]).find((s) => s.id === job.id));
  expect((await listed())?.missed_at).toBe(event?.payload.due_at);
  // The next due time is Temporal's again: told once, not at every check.
  const [row] = await h.sql<{ due: Date }>('select schedule_due_at as due from backup_jobs where id = ?', [job.id]);
  expect(new Date(row?.due as Date).getTime()).toBeGreaterThan(Date.now());
  expect((await h.api.post('/scheduler/tasks/absence_check/run?wait=60')).body.data.result.missed).toEqual([]);

  await waitFor(async () => {
    const list = (await h.api.get('/notifications')).body.data as { context_id: number; title: string }[];
    return list.find((n) => n.context_id === job.id && n.title === `Backup job ${job.name} did not run`);
  }, 'the missed-run notification', 60_000);
  expect((await h.api.post(`/backup-jobs/${job.id}/run?wait=60`)).body.data.status).toBe('success');
  await h.api.post('/scheduler/tasks/absence_check/run?wait=60');
  expect((await listed())?.missed_at).toBeNull();
  await h.api.delete(`/backup-jobs/${job.id}`);
});
