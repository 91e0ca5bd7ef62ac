import { createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { OutboundTarget } from '../common/outbound-target';

export const USER_AGENT = 'Fulgurite-Webhook/1.0 BackupControlPlane/0.1';
const RESPONSE_KEPT = 4000;
const MAX_DELAY_S = 3600;

export interface SignedRequest {
  target: OutboundTarget;
  event: string;
  guid: string;
  body: Buffer;
  secret: string;
  timeoutMs: number;
}

export interface AttemptResult {
  /** 0 when no HTTP answer came. */
  status: number;
  error: string | null;
  latencyMs: number;
  /** Seconds the receiver asked to wait (Retry-After), if it did. */
  retryAfterSeconds: number | null;
  responseText: string;
}

/**
 * The signature headers of one attempt. `X-Fulgurite-Signature` signs the body alone (the
 * reference's scheme); `X-Fulgurite-Signature-Timestamped` signs `<timestamp>.<body>`, so a
 * receiver that checks the timestamp can refuse replays.
 */
export function signatureHeaders(body: Buffer, secret: string, timestamp: number): Record<string, string> {
  const hmac = (data: Buffer) => createHmac('sha256', secret).update(data).digest('hex');
  return {
    'X-Fulgurite-Signature': `sha256=${hmac(body)}`,
    'X-Fulgurite-Timestamp': String(timestamp),
    'X-Fulgurite-Signature-Timestamped': `t=${timestamp},sha256=${hmac(Buffer.concat([Buffer.from(`${timestamp}.`), body]))}`,
  };
}

/** `Retry-After`: delay-seconds or an HTTP date. */
export function retryAfterSeconds(value: string | undefined, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** POSTs a signed webhook delivery (see signatureHeaders). */
export function postSigned(req: SignedRequest): Promise<AttemptResult> {
  return postBody(req.target, req.body, {
    'X-Fulgurite-Event': req.event,
    'X-Fulgurite-Delivery': req.guid,
    ...signatureHeaders(req.body, req.secret, Math.floor(Date.now() / 1000)),
  }, req.timeoutMs);
}

/**
 * POSTs exactly these bytes (JSON unless a header says otherwise) to the pinned address (TLS
 * still checks the URL's host name), follows no redirect and gives up after the time limit.
 */
export function postBody(target: OutboundTarget, body: Buffer, extraHeaders: Record<string, string>, timeoutMs: number): Promise<AttemptResult> {
  const started = Date.now();
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
  const headers = { 'Content-Type': 'application/json', 'Content-Length': String(body.length), 'User-Agent': USER_AGENT, ...extraHeaders };
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const done = (status: number, error: string | null, response?: IncomingMessage, text = '') =>
      resolve({ status, error, latencyMs: Date.now() - started, retryAfterSeconds: retryAfterSeconds(response?.headers['retry-after']), responseText: text });
    const outgoing = send(target.url, { method: 'POST', headers, lookup: pinned, signal: AbortSignal.timeout(timeoutMs) }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        // Postgres text cannot hold NUL: a receiver's answer must never stop its attempt being recorded.
        if (text.length < RESPONSE_KEPT) text += chunk.slice(0, RESPONSE_KEPT - text.length).replace(/\u0000/g, '\uFFFD');
      });
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        done(status, status >= 200 && status < 300 ? null : `HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`, response, text);
      });
      response.on('error', (error) => done(response.statusCode ?? 0, error.message, response, text));
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      const timedOut = error.name === 'AbortError' || error.name === 'TimeoutError';
      done(0, timedOut ? `no answer within ${timeoutMs / 1000} s` : `${error.code ?? error.name}: ${error.message}`);
    });
    outgoing.end(body);
  });
}

/**
 * Seconds before attempt `attempt + 1`: the initial delay doubled per attempt, at most an hour,
 * spread by ±20% so receivers coming back are not hit by every delivery at once; a receiver's
 * Retry-After wins when it asks for longer.
 */
export function retryDelaySeconds(attempt: number, initialSeconds: number, retryAfterSeconds: number | null, random: number): number {
  const backoff = Math.min(MAX_DELAY_S, initialSeconds * 2 ** (attempt - 1)) * (0.8 + 0.4 * random);
  return Math.max(backoff, retryAfterSeconds ?? 0);
}
