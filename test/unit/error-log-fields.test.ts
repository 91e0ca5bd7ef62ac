import { NotNullConstraintViolationException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { loggedError } from '../../api/middleware/errors';

/** What the API log keeps of an unexpected error: never the SQL or parameter values of a database error. */
describe('loggedError', () => {
  const HASH = 'scrypt$32768$8$1$c2FsdA==$a2V5';

  /** A driver error as node-postgres raises it: the query with its values in the message, the row in `detail`. */
  function pgError(fields: Record<string, unknown>): Error {
    return Object.assign(new Error(`insert into "users" ("username", "password_hash") values ('alice', '${HASH}') - duplicate key value`), {
      detail: `Failing row contains (alice, ${HASH}).`, table: 'users', ...fields,
    });
  }

  test('of a database error, where it failed (name, code, constraint, table, stack frames) but not its message', () => {
    const error = new UniqueConstraintViolationException(pgError({ code: '23505', constraint: 'users_username_unique' }));
    const logged = loggedError(error) as Record<string, string>;
    expect(logged).toEqual({ name: 'UniqueConstraintViolationException', code: '23505', constraint: 'users_username_unique', table: 'users', stack: expect.stringMatching(/^\s*at /) });
    expect(JSON.stringify(logged)).not.toContain(HASH);
    expect(logged.stack).not.toContain('insert into');
  });

  test('no constraint field when the error names none', () => {
    expect(loggedError(new NotNullConstraintViolationException(pgError({ code: '23502' })))).toMatchObject({ name: 'NotNullConstraintViolationException', code: '23502' });
    expect(loggedError(new NotNullConstraintViolationException(pgError({ code: '23502' })))).not.toHaveProperty('constraint');
  });

  test('any other error is logged whole', () => {
    const error = new TypeError('cannot read properties of undefined');
    expect(loggedError(error)).toBe(error);
  });
});
