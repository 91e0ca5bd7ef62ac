import { webhookBody } from '../../common/webhook-body';
import { retryAfterSeconds, retryDelaySeconds, signatureHeaders } from '../../activities/webhook-http';
import { createHmac } from 'node:crypto';

describe('the webhook body', () => {
  test('integers beyond 2^53 go out as strings, the others as numbers', () => {
    const body = webhookBody('backup_job.success', new Date('2026-12-04T00:00:00Z'), { bytes: 2 ** 60, small: 42, exact: 9007199254740991, big: 123n });
    expect(JSON.parse(body)).toEqual({ event: 'backup_job.success', created_at: '2026-12-04T00:00:00.000Z', data: { bytes: String(2 ** 60), small: 42, exact: 9007199254740991, big: '123' } });
  });
});

describe('signatures', () => {
  test('sign the exact bytes, and the timestamp with them', () => {
    const body = Buffer.from('{"name":"d\u00e9p\u00f4t \\"q\\""}');
    const headers = signatureHeaders(body, 'secret', 1764835200);
    expect(headers['X-Fulgurite-Signature']).toBe(`sha256=${createHmac('sha256', 'secret').update(body).digest('hex')}`);
    expect(headers['X-Fulgurite-Signature-Timestamped']).toBe(`t=1764835200,sha256=${createHmac('sha256', 'secret').update('1764835200.').update(body).digest('hex')}`);
  });
});

describe('retry delays', () => {
  test('double from the initial delay, within ±20%, capped at an hour', () => {
    for (const random of [0, 0.5, 0.999]) {
      expect(retryDelaySeconds(1, 10, null, random)).toBeCloseTo(10 * (0.8 + 0.4 * random));
      expect(retryDelaySeconds(3, 10, null, random)).toBeCloseTo(40 * (0.8 + 0.4 * random));
      expect(retryDelaySeconds(30, 10, null, random)).toBeCloseTo(3600 * (0.8 + 0.4 * random));
    }
    expect(new Set([0.1, 0.4, 0.9].map((r) => retryDelaySeconds(2, 10, null, r))).size).toBe(3);
  });

  test('a longer Retry-After wins, in seconds or as an HTTP date', () => {
    expect(retryDelaySeconds(1, 10, 120, 0.5)).toBe(120);
    expect(retryDelaySeconds(5, 10, 1, 0.5)).toBeCloseTo(160);
    const now = Date.parse('2026-12-04T00:00:00Z');
    expect(retryAfterSeconds('30', now)).toBe(30);
    expect(retryAfterSeconds('Fri, 04 Dec 2026 00:01:00 GMT', now)).toBe(60);
    expect(retryAfterSeconds('soon', now)).toBeNull();
  });
});
