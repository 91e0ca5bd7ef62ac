import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  /** The request path, with its query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as it arrived on the socket. */
  raw: Buffer;
  at: number;
}

/** What the receiver answers the n-th request (0-based); `hang` never answers. */
export type Reply = { status: number; headers?: Record<string, string>; hang?: boolean; body?: string };

/** A real HTTP receiver on loopback, as a webhook consumer would run one. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  private server: Server | null = null;
  private hanging: { destroy: () => void }[] = [];

  constructor(public reply: (n: number, request: Received) => Reply = () => ({ status: 200 })) {}

  /** Listens on `port` (0: any free one) and resolves with the port. */
  async listen(port = 0): Promise<number> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const request = { path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks), at: Date.now() };
        const answer = this.reply(this.received.length, request);
        this.received.push(request);
        if (answer.hang) {
          this.hanging.push(res.socket ?? { destroy: () => undefined });
          return;
        }
        res.writeHead(answer.status, answer.headers).end(answer.body ?? 'ok');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.base}/hook`;
  }

  /** `http://127.0.0.1:<port>`, for receivers that stand for a service with its own paths. */
  get base(): string {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.hanging) socket.destroy();
    this.server?.closeAllConnections();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
    this.server = null;
  }
}

/** What a receiver does with `X-Fulgurite-Signature`: HMAC-SHA256 of the raw bytes, compared in constant time. */
export function signatureValid(request: Received, secret: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(request.raw).digest('hex')}`);
  const given = Buffer.from(String(request.headers['x-fulgurite-signature'] ?? ''));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The timestamped scheme: `t=<ts>,sha256=<HMAC of "<ts>." + raw body>`, with the timestamp header agreeing. */
export function timestampedSignatureValid(request: Received, secret: string): boolean {
  const match = /^t=(\d+),sha256=([0-9a-f]{64})$/.exec(String(request.headers['x-fulgurite-signature-timestamped'] ?? ''));
  if (!match || match[1] !== request.headers['x-fulgurite-timestamp']) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.`).update(request.raw).digest('hex');
  return timingSafeEqual(Buffer.from(match[2] as string), Buffer.from(expected));
}
