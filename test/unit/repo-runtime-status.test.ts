import { repoRuntimeStatus, type RepoRuntimeFacts } from '../../common/repo-runtime';
import { activityAction, activitySeverity } from '../../api/middleware/activity-log';

const NOW = new Date('2026-12-04T12:00:00Z');
const hoursBefore = (hours: number) => new Date(NOW.getTime() - hours * 3_600_000);

/** A healthy repository: read an hour ago, newest snapshot an hour old, nothing failing or running. */
const facts = (overrides: Partial<RepoRuntimeFacts> = {}): RepoRuntimeFacts => ({
  alertHours: 25,
  lastSnapshotTime: hoursBefore(1),
  catalogueRefreshedAt: hoursBefore(1),
  backupFailed: false,
  checkFailed: false,
  backupInProgress: false,
  ...overrides,
});

describe('the repository runtime status rule', () => {
  test('a snapshot within alert_hours is ok, up to and including alert_hours exactly', () => {
    expect(repoRuntimeStatus(facts(), NOW)).toBe('ok');
    expect(repoRuntimeStatus(facts({ lastSnapshotTime: hoursBefore(25) }), NOW)).toBe('ok');
  });

  test('a newest snapshot older than the repository\u2019s own alert_hours is warning', () => {
    expect(repoRuntimeStatus(facts({ lastSnapshotTime: hoursBefore(25.01) }), NOW)).toBe('warning');
    expect(repoRuntimeStatus(facts({ alertHours: 2, lastSnapshotTime: hoursBefore(3) }), NOW)).toBe('warning');
    expect(repoRuntimeStatus(facts({ alertHours: 168, lastSnapshotTime: hoursBefore(100) }), NOW)).toBe('ok');
  });

  test('a failed latest backup or check is error, however fresh the snapshots and whatever runs', () => {
    expect(repoRuntimeStatus(facts({ backupFailed: true }), NOW)).toBe('error');
    expect(repoRuntimeStatus(facts({ checkFailed: true }), NOW)).toBe('error');
    expect(repoRuntimeStatus(facts({ backupFailed: true, backupInProgress: true, lastSnapshotTime: null }), NOW)).toBe('error');
    expect(repoRuntimeStatus(facts({ checkFailed: true, lastSnapshotTime: hoursBefore(100) }), NOW)).toBe('error');
  });

  test('without snapshots: pending while a backup runs, no_snap once the catalogue was read empty, unknown before it was ever read', () => {
    expect(repoRuntimeStatus(facts({ lastSnapshotTime: null, backupInProgress: true }), NOW)).toBe('pending');
    expect(repoRuntimeStatus(facts({ lastSnapshotTime: null, catalogueRefreshedAt: null, backupInProgress: true }), NOW)).toBe('pending');
    expect(repoRuntimeStatus(facts({ lastSnapshotTime: null }), NOW)).toBe('no_snap');
    expect(repoRuntimeStatus(facts({ lastSnapshotTime: null, catalogueRefreshedAt: null }), NOW)).toBe('unknown');
  });

  test('a backup running into a repository that has snapshots changes nothing', () => {
    expect(repoRuntimeStatus(facts({ backupInProgress: true }), NOW)).toBe('ok');
    expect(repoRuntimeStatus(facts({ backupInProgress: true, lastSnapshotTime: hoursBefore(30) }), NOW)).toBe('warning');
  });
});

describe('activity actions and severities', () => {
  test('are named resource.verb after the operationId', () => {
    expect(['createBackupJob', 'deleteRepo', 'runCopyJob', 'revokeApiToken', 'updateSetting', 'redeliverWebhookDelivery', 'createUser'].map(activityAction))
      .toEqual(['backup_job.create', 'repo.delete', 'copy_job.run', 'api_token.revoke', 'setting.update', 'webhook_delivery.redeliver', 'user.create']);
  });

  test('are warning for deletions and for settings, users and tokens; info otherwise', () => {
    const severities = Object.fromEntries(
      ['repo.delete', 'notification.delete_read', 'setting.update', 'user.create', 'api_token.create', 'api_token.revoke', 'repo.create', 'backup_job.run', 'host.update']
        .map((action) => [action, activitySeverity(action)]),
    );
    expect(severities).toEqual({
      'repo.delete': 'warning', 'notification.delete_read': 'warning', 'setting.update': 'warning', 'user.create': 'warning', 'api_token.create': 'warning',
      'api_token.revoke': 'warning', 'repo.create': 'info', 'backup_job.run': 'info', 'host.update': 'info',
    });
  });
});
