import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScheduleNotFoundError } from '@temporalio/client';
import { backupScheduleId, copyScheduleId } from '../../common/schedule-ids';
import { unique } from '../support/expectations';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/wait';
import { signatureValid, WebhookReceiver, type Received } from '../support/webhook-receiver';

/**
 * Backup schedules are Temporal Schedules, kept in step with their jobs; a firing runs the
 * same workflow steps as an API trigger and produces the same records and events.
 */
let h: Harness;
let dir: string;
let repoId: number;
const receiver = new WebhookReceiver();

const scheduleOf = (jobId: number) => h.services.temporal.schedule.getHandle(backupScheduleId(jobId, h.config.temporal.taskQueue));
type Listed = { id: number; next_run: string | null; schedule_summary: string; timezone: string };
const listed = async (jobId: number) => ((await h.api.get('/scheduler/backup-schedules?per_page=200')).body.data as Listed[]).find((s) => s.id === jobId);

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-schedules-'));
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'file'), 'scheduled data\n');
  repoId = (await h.api.post('/repos', { name: `repo-${unique()}`, path: join(dir, 'repo'), password: 'pw', init: true })).body.data.id;
  await receiver.listen();
  await h.api.put('/settings/webhook_allow_private_targets', { value: true });
});
afterAll(async () => {
  await receiver.close();
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a job with schedule_enabled gets a Temporal Schedule that follows its fields and the scheduler settings', async () => {
  const job = (await h.api.post('/backup-jobs', {
    name: `job-${unique()}`, repo_id: repoId, source_paths: [join(dir, 'src')], schedule_enabled: true, schedule_hour: 3, schedule_days: '1,3,5',
  })).body.data;
  const described = await scheduleOf(job.id).describe();
  expect(described.spec.timezone).toBe('UTC');
  expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'scheduledBackupRun', args: [{ jobId: job.id }] });
  const next = described.info.nextActionTimes[0] as Date;
  expect([1, 3, 5]).toContain(next.getUTCDay());
  expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([3, 0]);
  expect(await listed(job.id)).toMatchObject({
    schedule_enabled: true, schedule_summary: 'Mon, Wed, Fri at 03:00', cron_expression: '0 3 * * 1,3,5', timezone: 'UTC',
    schedule_id: backupScheduleId(job.id, h.config.temporal.taskQueue), next_run: next.toISOString(),
  });

  // The job's hour and the global minute and time zone all move the next firing.
  await h.api.patch(`/backup-jobs/${job.id}`, { schedule_hour: 22, schedule_days: '7' });
  await h.api.put('/settings/cron_run_minute', { value: 15 });
  await h.api.put('/settings/timezone', { value: 'Asia/Tokyo' });
  try {
    const moved = (await listed(job.id)) as Listed;
    expect(moved).toMatchObject({ schedule_summary: 'Sun at 22:15', timezone: 'Asia/Tokyo', cron_expression: '15 22 * * 0' });
    // 22:15 on a Sunday in Tokyo is 13:15 UTC on that Sunday.
    const at = new Date(moved.next_run as string);
    expect([at.getUTCDay(), at.getUTCHours(), at.getUTCMinutes()]).toEqual([0, 13, 15]);
  } finally {
    await h.api.put('/settings/timezone', { value: 'UTC' });
    await h.api.put('/settings/cron_run_minute', { value: 0 });
  }

  await h.api.patch(`/backup-jobs/${job.id}`, { schedule_enabled: false });
  await expect(scheduleOf(job.id).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  expect(await listed(job.id)).toMatchObject({ schedule_enabled: false, schedule_id: null, next_run: null });
  expect((await h.api.get('/scheduler/backup-schedules?enabled=1&per_page=200')).body.data.map((s: { id: number }) => s.id)).not.toContain(job.id);

  await h.api.patch(`/backup-jobs/${job.id}`, { schedule_enabled: true });
  await scheduleOf(job.id).describe();
  expect((await h.api.delete(`/backup-jobs/${job.id}`)).status).toBe(204);
  await expect(scheduleOf(job.id).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
});

test('a scheduled run and an API run leave the same records and send the same webhook event', async () => {
  const hook = (await h.api.post('/webhooks', { name: 'runs', url: receiver.url, events: ['backup_job.success'] })).body.data;
  const job = (await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoId, source_paths: [join(dir, 'src')], schedule_enabled: true })).body.data;
  const byApi = (await h.api.post(`/backup-jobs/${job.id}/run?wait=60`)).body.data;
  expect(byApi).toMatchObject({ status: 'success', trigger: 'api' });

  await scheduleOf(job.id).trigger();
  const byScheduleRun = await waitFor(async () => {
    const runs = (await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data as { id: string; trigger: string; status: string; snapshot_id: string; workflow_id: string }[];
    return runs.find((r) => r.trigger === 'schedule' && r.status === 'success');
  }, 'the scheduled run', 60_000);
  expect(byScheduleRun.workflow_id.startsWith(`${backupScheduleId(job.id, h.config.temporal.taskQueue)}-`)).toBe(true);
  expect((await h.api.get(`/backup-jobs/${job.id}`)).body.data).toMatchObject({ last_status: 'success', last_run_id: byScheduleRun.id, last_snapshot_id: byScheduleRun.snapshot_id });

  const events = await waitFor(async () => (receiver.received.length >= 2 ? receiver.received : undefined), 'both events at the receiver');
  const bodies = events.map((r: Received) => JSON.parse(r.raw.toString()));
  const api = bodies.find((b) => b.data.run_id === byApi.id);
  const scheduled = bodies.find((b) => b.data.run_id === byScheduleRun.id);
  expect(Object.keys(scheduled.data).sort()).toEqual(Object.keys(api.data).sort());
  expect(scheduled).toMatchObject({ event: 'backup_job.success', data: { id: job.id, status: 'success', snapshot_id: byScheduleRun.snapshot_id, failure: null } });
  expect(events.every((r: Received) => signatureValid(r, hook.secret))).toBe(true);
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('a schedule outliving its job\u2019s enabling removes itself; a run lost with its workflow does not block firings', async () => {
  const job = (await h.api.post('/backup-jobs', { name: `job-${unique()}`, repo_id: repoId, source_paths: [join(dir, 'src')], schedule_enabled: true })).body.data;
  // As if disabling the job had failed to reach Temporal: the schedule is still there.
  await h.sql('update backup_jobs set schedule_enabled = false where id = ?', [job.id]);
  await scheduleOf(job.id).trigger();
  await waitFor(async () => (await scheduleOf(job.id).describe().then(() => undefined, (error: unknown) => (error instanceof ScheduleNotFoundError ? true : undefined))), 'the schedule to remove itself', 30_000);
  expect((await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data).toEqual([]);

  // A run recorded as running whose workflow is gone (terminated from the Temporal UI, say).
  await h.api.patch(`/backup-jobs/${job.id}`, { schedule_enabled: true });
  await h.sql(
    "insert into backup_job_runs (id, job_id, repo_id, status, trigger, workflow_id, queued_at) values (gen_random_uuid(), ?, ?, 'running', 'api', ?, now() - interval '1 hour')",
    [job.id, repoId, `backup-job-${job.id}-gone-${unique()}`],
  );
  await scheduleOf(job.id).trigger();
  const runs = await waitFor(async () => {
    const list = (await h.api.get(`/backup-jobs/${job.id}/runs`)).body.data as { trigger: string; status: string; failure: { code: string } | null }[];
    return list.some((r) => r.trigger === 'schedule' && r.status === 'success') ? list : undefined;
  }, 'the scheduled run', 60_000);
  expect(runs.find((r) => r.trigger === 'api')).toMatchObject({ status: 'failed', failure: { code: 'workflow_lost' } });
  await h.api.delete(`/backup-jobs/${job.id}`);
});

test('a copy job\u2019s schedule is a Temporal Schedule too, and its firing is a copy run like an API one', async () => {
  const job = (await h.api.post('/copy-jobs', {
    name: `offsite-${unique()}`, source_repo_id: repoId, dest_path: join(dir, `copy-${unique()}`), dest_password: 'dest-pw', init_destination: true,
    schedule_enabled: true, schedule_hour: 5, schedule_days: '6,7',
  })).body.data;
  const handle = h.services.temporal.schedule.getHandle(copyScheduleId(job.id, h.config.temporal.taskQueue));
  expect((await handle.describe()).action).toMatchObject({ workflowType: 'scheduledCopyRun', args: [{ jobId: job.id }] });
  const listed = ((await h.api.get('/scheduler/copy-schedules?enabled=1&per_page=200')).body.data as { id: number }[]).find((s) => s.id === job.id);
  expect(listed).toMatchObject({ schedule_summary: 'Sat, Sun at 05:00', cron_expression: '0 5 * * 6,0', schedule_id: copyScheduleId(job.id, h.config.temporal.taskQueue), next_run: expect.any(String) });

  await handle.trigger();
  const run = await waitFor(async () => {
    const runs = (await h.api.get(`/repos/${repoId}/runs?kind=copy`)).body.data as { job_id: number; trigger: string; status: string; result: { snapshots_copied: number } | null }[];
    return runs.find((r) => r.job_id === job.id && r.trigger === 'schedule' && r.status === 'success');
  }, 'the scheduled copy', 60_000);
  expect(run.result?.snapshots_copied).toBeGreaterThan(0);
  expect((await h.api.get(`/copy-jobs/${job.id}`)).body.data).toMatchObject({ last_status: 'success' });

  await h.api.patch(`/copy-jobs/${job.id}`, { schedule_enabled: false });
  await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  await h.api.patch(`/copy-jobs/${job.id}`, { schedule_enabled: true });
  expect((await h.api.delete(`/copy-jobs/${job.id}`)).status).toBe(204);
  await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
});
