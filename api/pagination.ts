import type { EntityManager, EntityName, FilterQuery, QueryOrderMap } from '@mikro-orm/postgresql';
import type { Host, Repo, SshKey, User } from '../db/entities';

/** Page and per_page as validated (and defaulted) by the contract. */
export interface Page {
  page: number;
  perPage: number;
  offset: number;
}

/** Entities other entities refer to (to-one relations). */
type Referenced = Repo | Host | SshKey | User;

/** An entity as a plain row: to-one relations are their foreign key. */
export type Row<T> = { [K in keyof T]: T[K] extends Referenced | null ? number | null : T[K] };

export function pageOf(query: Record<string, unknown>): Page {
  const page = Number(query.page ?? 1);
  const perPage = Number(query.per_page ?? 50);
  return { page, perPage, offset: (page - 1) * perPage };
}

/**
 * The page of a list that also takes the reference's `limit` (its page size, without pages):
 * `per_page` wins when both are given (it has a default, so whether the client gave it is read
 * from the raw query string), and a limit above 200 is capped at 200.
 */
export function pageWithLimit(rawQuery: Record<string, unknown>, query: Record<string, unknown>): Page {
  const limitOnly = rawQuery.per_page === undefined && query.limit !== undefined;
  return pageOf(limitOnly ? { ...query, per_page: Math.min(Number(query.limit), 200) } : query);
}

/**
 * The `since` (inclusive) / `until` (exclusive) query parameters as a filter on `field`, or an
 * empty filter when neither is given.
 */
export function timeWindow(field: string, query: Record<string, unknown>): Record<string, { $gte?: Date; $lt?: Date }> {
  const window = {
    ...(query.since ? { $gte: new Date(String(query.since)) } : {}),
    ...(query.until ? { $lt: new Date(String(query.until)) } : {}),
  };
  return Object.keys(window).length > 0 ? { [field]: window } : {};
}

export function pageMeta(page: Page, total: number) {
  return { page: page.page, per_page: page.perPage, total, total_pages: Math.ceil(total / page.perPage) };
}

/**
 * One page of rows and the total count, read in parallel. Lists skip entity hydration, which
 * costs more than the query itself once a page holds a hundred rows.
 */
export async function findPage<T extends object>(
  em: EntityManager,
  entity: EntityName<T>,
  page: Page,
  where: FilterQuery<T> = {},
  orderBy: QueryOrderMap<T> = { id: 'asc' } as QueryOrderMap<T>,
): Promise<[Row<T>[], number]> {
  const [rows, total] = await Promise.all([
    em.createQueryBuilder(entity).select('*').where(where).orderBy(orderBy).limit(page.perPage).offset(page.offset).execute('all', true),
    em.createQueryBuilder(entity).where(where).getCount(),
  ]);
  return [rows as unknown as Row<T>[], total];
}

/** The `name` of each row of `entity` with one of `ids`, by id (for views of rows that reference it). */
export async function namesById<T extends { id: number; name: string }>(em: EntityManager, entity: EntityName<T>, ids: (number | null)[]): Promise<Map<number, string>> {
  const wanted = [...new Set(ids.filter((id): id is number => id !== null))];
  if (wanted.length === 0) return new Map();
  const rows = await em.createQueryBuilder(entity).select(['id', 'name']).where({ id: { $in: wanted } } as unknown as FilterQuery<T>).execute('all', true);
  return new Map((rows as unknown as { id: number; name: string }[]).map((row) => [row.id, row.name]));
}
