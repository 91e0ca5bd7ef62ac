/**
 * The exact bytes a webhook receives: `{event, created_at, data}`. Integers beyond 2^53 go out
 * as strings, since most JSON parsers would round them.
 */
export function webhookBody(event: string, createdAt: Date, data: unknown): string {
  return JSON.stringify({ event, created_at: createdAt.toISOString(), data }, (_key, value: unknown) =>
    typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) ? String(value) : value,
  );
}
