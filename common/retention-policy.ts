/** A backup job's retention policy, as `restic forget` options. No I/O: workflows carry it. */
export interface RetentionPolicy {
  keepLast: number | null;
  keepHourly: number | null;
  keepDaily: number | null;
  keepWeekly: number | null;
  keepMonthly: number | null;
  keepYearly: number | null;
  /** A restic duration (`30d`, `1y6m`): keep every snapshot younger than this. */
  keepWithin: string | null;
  keepTags: string[];
  prune: boolean;
}

/**
 * Whether the policy surely keeps the snapshot a backup just made: a count or a `within` does
 * (the newest snapshot is always kept by either). Tags alone do not (the job's snapshots may not
 * carry them), and no rule at all makes restic refuse to forget anything.
 */
export function keepsNewest(policy: RetentionPolicy): boolean {
  const counts = [policy.keepLast, policy.keepHourly, policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly];
  return counts.some((n) => n !== null && n > 0) || policy.keepWithin !== null;
}
