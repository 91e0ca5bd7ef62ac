import type { EntityManager } from '@mikro-orm/postgresql';

export const REPO_RUNTIME_STATUSES = ['ok', 'warning', 'error', 'no_snap', 'pending', 'unknown'] as const;
export type RepoRuntimeStatus = (typeof REPO_RUNTIME_STATUSES)[number];

/** What the runtime status of a repository is derived from. */
export interface RepoRuntimeFacts {
  /** The repository's `alert_hours`: a newest snapshot older than this is stale. */
  alertHours: number;
  /** The newest snapshot of the catalogue; null when the catalogue holds none. */
  lastSnapshotTime: Date | null;
  /** When the catalogue was last read from restic; null: never, so its being empty proves nothing. */
  catalogueRefreshedAt: Date | null;
  /** Whether the latest finished run of some backup job into the repository failed. */
  backupFailed: boolean;
  /** Whether the repository's latest finished check failed. */
  checkFailed: boolean;
  /** Whether a backup into the repository is queued or running. */
  backupInProgress: boolean;
}

export const hoursSince = (time: Date, now: Date) => (now.getTime() - time.getTime()) / 3_600_000;

/**
 * The status rule. A failure outranks everything (fresh snapshots from elsewhere do not make a
 * failing job healthy); a repository without snapshots is `pending` while its first backup runs;
 * staleness is judged against the repository's own alert_hours.
 */
export function repoRuntimeStatus(facts: RepoRuntimeFacts, now: Date): RepoRuntimeStatus {
  if (facts.backupFailed || facts.checkFailed) return 'error';
  if (facts.lastSnapshotTime === null) {
    if (facts.backupInProgress) return 'pending';
    return facts.catalogueRefreshedAt === null ? 'unknown' : 'no_snap';
  }
  return hoursSince(facts.lastSnapshotTime, now) > facts.alertHours ? 'warning' : 'ok';
}

export interface RepoRuntimeRow {
  repoId: number;
  repoName: string;
  snapshotCount: number;
  lastSnapshotTime: Date | null;
  /** Hours since the newest snapshot, to two decimals. */
  hoursAgo: number | null;
  status: RepoRuntimeStatus;
  /** When the facts last changed: the catalogue read, or the latest backup or check finishing. */
  updatedAt: Date | null;
}

// The driver hands timestamps back as strings.
type Timestamp = string | Date | null;
const toDate = (value: Timestamp) => (value === null ? null : new Date(value));

interface FactsRow {
  id: number;
  name: string;
  alert_hours: number;
  snapshots_refreshed_at: Timestamp;
  snapshot_count: number;
  last_snapshot_time: Timestamp;
  backup_failed: boolean | null;
  last_backup_at: Timestamp;
  check_failed: boolean | null;
  last_check_at: Timestamp;
  backup_in_progress: boolean;
}

/*
 * Per repository: its catalogue, the latest finished run of each job now backing up into it
 * (runs of deleted or retargeted jobs no longer speak for it), its latest finished check, and
 * whether a backup is under way.
 */
const FACTS_QUERY = `
  select r.id, r.name, r.alert_hours, r.snapshots_refreshed_at, s.snapshot_count, s.last_snapshot_time,
         b.backup_failed, b.last_backup_at, c.check_failed, c.last_check_at,
         exists (select 1 from backup_job_runs a where a.repo_id = r.id and a.status in ('queued', 'running')) as backup_in_progress
    from repos r
    cross join lateral (select count(*)::int as snapshot_count, max(time) as last_snapshot_time from snapshots where repo_id = r.id) s
    cross join lateral (
      select bool_or(latest.status = 'failed') as backup_failed, max(latest.finished_at) as last_backup_at
        from (select distinct on (run.job_id) run.status, run.finished_at
                from backup_job_runs run join backup_jobs job on job.id = run.job_id and job.repo_id = run.repo_id
               where run.repo_id = r.id and run.status in ('success', 'failed')
               order by run.job_id, run.finished_at desc nulls last, run.queued_at desc) latest
    ) b
    left join lateral (
      select o.status = 'failed' as check_failed, o.finished_at as last_check_at
        from operation_runs o
       where o.kind = 'repo_check' and o.repo_id = r.id and o.status in ('success', 'failed')
       order by o.finished_at desc nulls last, o.queued_at desc
       limit 1
    ) c on true
   where r.id in (?)
   order by r.id`;

const latest = (...times: (Date | null)[]) =>
  times.reduce<Date | null>((newest, time) => (time && (!newest || time > newest) ? time : newest), null);

/** The runtime status of each of these repositories (unknown ids are left out), by repository id. */
export async function loadRepoRuntime(em: EntityManager, repoIds: readonly number[], now: Date = new Date()): Promise<RepoRuntimeRow[]> {
  if (repoIds.length === 0) return [];
  const rows = await em.getConnection().execute<FactsRow[]>(FACTS_QUERY, [[...repoIds]]);
  return rows.map((row) => {
    const lastSnapshotTime = toDate(row.last_snapshot_time);
    const catalogueRefreshedAt = toDate(row.snapshots_refreshed_at);
    const facts: RepoRuntimeFacts = {
      alertHours: row.alert_hours,
      lastSnapshotTime,
      catalogueRefreshedAt,
      backupFailed: row.backup_failed === true,
      checkFailed: row.check_failed === true,
      backupInProgress: row.backup_in_progress,
    };
    return {
      repoId: row.id,
      repoName: row.name,
      snapshotCount: row.snapshot_count,
      lastSnapshotTime,
      hoursAgo: lastSnapshotTime ? Math.round(hoursSince(lastSnapshotTime, now) * 100) / 100 : null,
      status: repoRuntimeStatus(facts, now),
      updatedAt: latest(catalogueRefreshedAt, toDate(row.last_backup_at), toDate(row.last_check_at)),
    };
  });
}
