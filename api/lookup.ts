import type { EntityManager, EntityName, FilterQuery, FindOneOptions, Loaded } from '@mikro-orm/postgresql';
import { invalidField, notFound } from './errors';

/** The entity a path names by id, or 404 `not_found` ("<what> <id> not found"). */
export async function findOr404<T extends object, P extends string = never>(
  em: EntityManager,
  entity: EntityName<T>,
  id: number,
  what: string,
  options?: FindOneOptions<T, P>,
): Promise<Loaded<T, P>> {
  const found = await em.findOne(entity, id as FilterQuery<T>, options);
  if (!found) throw notFound(`${what} ${id}`);
  return found;
}

/** The entity a request body refers to by id in `field`: null for no id, 422 naming the field when it does not exist. */
export async function referenced<T extends object>(
  em: EntityManager,
  entity: EntityName<T>,
  id: number | null | undefined,
  field: string,
  what: string,
): Promise<T | null> {
  if (id === null || id === undefined) return null;
  const found = await em.findOne(entity, id as FilterQuery<T>);
  if (!found) throw invalidField(field, `${what} ${id} does not exist`);
  return found as T;
}
