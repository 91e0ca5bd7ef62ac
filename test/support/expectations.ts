import { randomBytes } from 'node:crypto';
import type { ApiResponse } from './api-client';

/** Traces of a stack, a source file or an internal error in a response body. */
export const STACK_TRACE = /\n\s+at\s|\bat\s+\S+\s+\(.*:\d+:\d+\)|\.ts:\d+|node_modules|Error:\s/;
export const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** A short random suffix for names that must not collide between tests. */
export const unique = () => randomBytes(4).toString('hex');

/** An error envelope with this status and code (and these extra error fields), without internals. */
export function expectError(res: ApiResponse, status: number, code: string, extra: Record<string, unknown> = {}): void {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.body).toMatchObject({ data: null, meta: null, error: { code, message: expect.any(String), ...extra } });
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(res.text).not.toMatch(STACK_TRACE);
}

/** A 422 validation_error whose `fields` name `field`. */
export function expectFieldError(res: ApiResponse, field: string): void {
  expectError(res, 422, 'validation_error');
  expect(res.body.error.fields.map((f: { field: string }) => f.field)).toContain(field);
}
