import net from 'node:net';

/** A TCP port that was free on `host` a moment ago (bound to port 0, then released). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`could not read the port bound on ${host}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** True when nothing listens on host:port and we could bind it ourselves. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** `preferred` when it is free on host, else a free port. */
export async function preferredOrFreePort(host: string, preferred: number): Promise<number> {
  return (await isPortFree(host, preferred)) ? preferred : freePort(host);
}

/** True when a TCP connection to host:port is accepted within `timeoutMs`. */
export function isPortOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls until host:port accepts connections. Rejects after `timeoutMs`, or as soon as
 * `abort` (e.g. the process that should listen has exited) settles.
 */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs = 30_000,
  abort?: Promise<unknown>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let aborted: string | null = null;
  abort?.then(
    (v) => (aborted = `process exited (${String(v)})`),
    (e: unknown) => (aborted = String(e)),
  );
  for (;;) {
    if (aborted) throw new Error(`gave up waiting for ${host}:${port}: ${aborted}`);
    if (await isPortOpen(host, port, 500)) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
