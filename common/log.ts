import { AsyncLocalStorage } from 'node:async_hooks';
import { pino } from 'pino';

/** Fields that every line logged while some work runs carries (an API request's `request_id`). */
export type LogFields = Readonly<Record<string, string>>;

// One store instead of threading the request id through every function that logs or starts a workflow.
const fields = new AsyncLocalStorage<LogFields>();

/** Runs `work` with `extra` added to every line it logs (and to the memo of the workflows it starts). */
export function withLogFields<T>(extra: LogFields, work: () => T): T {
  return fields.run({ ...fields.getStore(), ...extra }, work);
}

/** The fields of the work running now; empty outside of any. */
export function logFields(): LogFields {
  return fields.getStore() ?? {};
}

/**
 * The API's and the worker's log: one JSON line per event, `{"level":"info","time":
 * "<ISO 8601>","msg":...}` plus the fields of the work running now. `LOG_LEVEL` (trace, debug,
 * info, warn, error, silent) sets the threshold; info by default. Pass errors as `{ err }`.
 */
export const log = pino(
  {
    level: process.env.LOG_LEVEL || 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: logFields,
  },
  // Errors on stderr, where process supervisors (and tests) look for why a process died; the
  // standard streams rather than pino's file descriptor ones, so that a test can listen to them.
  pino.multistream([{ stream: process.stdout, level: 'trace' }, { stream: process.stderr, level: 'error' }], { dedupe: true }),
);
