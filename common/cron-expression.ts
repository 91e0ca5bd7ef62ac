/**
 * Checks a cron expression before Temporal sees it, so a bad one is a 422 on the job rather
 * than a schedule that fails to apply: 5 fields (minute hour day-of-month month day-of-week)
 * or one of the `@` shorthands Temporal accepts.
 */
const MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface Field {
  name: string;
  min: number;
  max: number;
  /** Names standing for min, min + 1, ... */
  names?: string[];
}

const FIELDS: Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 7 is Sunday too, as in most crons.
  { name: 'day of week', min: 0, max: 7, names: DAYS },
];

function valueOf(token: string, field: Field): number | null {
  const named = field.names?.indexOf(token.toUpperCase()) ?? -1;
  if (named >= 0) return field.min + named;
  if (!/^\d{1,2}$/.test(token)) return null;
  const value = Number(token);
  return value >= field.min && value <= field.max ? value : null;
}

/** The values an item (a value, a name, a range, `*`, each with an optional `/step`) stands for, or why it is refused. */
function itemValues(item: string, field: Field): number[] | string {
  const [range, step, ...rest] = item.split('/');
  if (rest.length > 0 || range === undefined || range === '') return `"${item}" is not a value, range or step`;
  if (step !== undefined && (!/^\d{1,2}$/.test(step) || Number(step) === 0)) return `the step of "${item}" must be a number from 1`;
  let start = field.min;
  let end = field.max;
  if (range !== '*') {
    const [from, to, ...more] = range.split('-');
    if (more.length > 0) return `"${item}" is not a value, range or step`;
    const first = valueOf(from ?? '', field);
    if (first === null) return `"${from}" is not a ${field.name} (${field.min}-${field.max}${field.names ? ' or a name' : ''})`;
    const last = to === undefined ? null : valueOf(to, field);
    if (to !== undefined && last === null) return `"${to}" is not a ${field.name} (${field.min}-${field.max}${field.names ? ' or a name' : ''})`;
    if (last !== null && first > last) return `the range "${range}" ends before it starts`;
    start = first;
    // `5/15` runs from 5 to the end of the field, as in Temporal.
    end = last ?? (step === undefined ? first : field.max);
  }
  const values: number[] = [];
  for (let value = start; value <= end; value += Number(step ?? 1)) values.push(value);
  return values;
}

/** Days in each month, February of a leap year included. */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The expression as stored and given to Temporal: single spaces, shorthands in lower case, names in upper case. */
export function normalizeCron(expression: string): string {
  const trimmed = expression.trim().replace(/\s+/g, ' ');
  return trimmed.startsWith('@') ? trimmed.toLowerCase() : trimmed.toUpperCase();
}

/** Why the expression is refused, or null when it is a valid cron expression. */
export function cronProblem(expression: string): string | null {
  const trimmed = expression.trim();
  if (trimmed.startsWith('@')) return MACROS.includes(trimmed.toLowerCase()) ? null : `unknown shorthand "${trimmed}" (one of ${MACROS.join(', ')})`;
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 5) return `a cron expression has 5 fields (minute hour day-of-month month day-of-week), not ${fields.length}`;
  const values: number[][] = [];
  for (const [index, text] of fields.entries()) {
    const field = FIELDS[index] as Field;
    const ofField: number[] = [];
    for (const item of text.split(',')) {
      const items = itemValues(item, field);
      if (typeof items === 'string') return `${field.name}: ${items}`;
      ofField.push(...items);
    }
    values.push(ofField);
  }
  const [, , days = [], months = []] = values;
  if (!months.some((month) => days.some((day) => day <= (DAYS_IN_MONTH[month - 1] as number)))) {
    return 'day of month: none of these days is in any of these months, so the schedule would never fire';
  }
  return null;
}
