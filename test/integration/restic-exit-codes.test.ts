import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/harness';

/**
 * restic's exit code 3 ("snapshot written, some source files unreadable") cannot be provoked as
 * root on a real filesystem, so here the worker's restic is a script that answers as restic
 * 0.18 does in that case. Everything else (API, workflow, activity, database) is real.
 */
let h: Harness;
let dir: string;
const snapshotId = 'ab'.repeat(32);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bcp-exit3-'));
  const script = join(dir, 'restic');
  await writeFile(
    script,
    `#!/bin/sh
printf '%s\\n' "$*" >> ${dir}/argv
cat >> ${dir}/stdin
case " $* " in
  *" backup "*)
    echo '{"message_type":"summary","files_new":1,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_added":10,"data_added_packed":10,"total_files_processed":1,"total_bytes_processed":10,"snapshot_id":"${snapshotId}"}'
    echo '{"message_type":"error","error":{"message":"open /srv/locked: permission denied"},"during":"archival","item":"/srv/locked"}' >&2
    exit 3;;
  *" snapshots "*)
    echo '[]'
    exit 0;;
esac
exit 1
`,
  );
  await chmod(script, 0o755);
  h = await startHarness({ resticBinary: script });
});
afterAll(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('exit code 3 is a successful run whose warnings name the unreadable files', async () => {
  const repo = await h.api.post('/repos', { name: 'exit3', path: join(dir, 'repo'), password: 'stdin only, please' });
  const job = await h.api.post('/backup-jobs', { name: 'exit3', repo_id: repo.body.data.id, source_paths: ['/srv'] });
  const run = await h.api.post(`/backup-jobs/${job.body.data.id}/run?wait=60`);
  expect(run.status).toBe(200);
  expect(run.body.data).toMatchObject({ status: 'success', snapshot_id: snapshotId, failure: null, attempts: 1 });
  expect(run.body.data.warnings).toEqual(['/srv/locked: open /srv/locked: permission denied']);
  expect((await h.api.get(`/backup-jobs/${job.body.data.id}`)).body.data).toMatchObject({ last_status: 'success', last_snapshot_id: snapshotId });

  // The password reached restic on stdin, never in its arguments.
  expect(await readFile(join(dir, 'argv'), 'utf8')).not.toContain('stdin only');
  expect(await readFile(join(dir, 'stdin'), 'utf8')).toContain('stdin only, please\n');
});
