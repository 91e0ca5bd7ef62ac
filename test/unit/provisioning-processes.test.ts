import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, isPortFree, isPortOpen, preferredOrFreePort, waitForPort } from '../../scripts/lib/ports';
import { startProcess } from '../../scripts/lib/processes';
import { which } from '../../scripts/lib/which';

describe('ports', () => {
  it('finds a free loopback port, sees it taken while something listens, and waits for it', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(await isPortFree('127.0.0.1', port)).toBe(true);
    expect(await isPortOpen('127.0.0.1', port, 500)).toBe(false);
    await expect(waitForPort('127.0.0.1', port, 300)).rejects.toThrow(/nothing listens/);

    const server = net.createServer();
    const waiting = waitForPort('127.0.0.1', port, 5000);
    setTimeout(() => server.listen(port, '127.0.0.1'), 200);
    await waiting;
    try {
      expect(await isPortFree('127.0.0.1', port)).toBe(false);
      expect(await isPortOpen('127.0.0.1', port)).toBe(true);
      expect(await preferredOrFreePort('127.0.0.1', port)).not.toBe(port);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await preferredOrFreePort('127.0.0.1', port)).toBe(port);
  });
});

describe('startProcess', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-proc-test-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes output to its log file and reports the exit code', async () => {
    const logFile = path.join(dir, 'logs', 'echo.log');
    const p = await startProcess({ name: 'echo', command: 'sh', args: ['-c', 'echo hello; echo oops >&2; exit 3'], logFile });
    expect(p.pid).toBeGreaterThan(0);
    await expect(p.exited).resolves.toBe(3);
    expect(p.exitDescription()).toBe('code 3');
    expect(fs.readFileSync(logFile, 'utf8')).toBe('hello\noops\n');
  });

  it('stop() ends a running process with SIGTERM', async () => {
    const p = await startProcess({ name: 'sleep', command: 'sleep', args: ['60'], logFile: path.join(dir, 'sleep.log') });
    await p.stop();
    await expect(p.exited).resolves.toBeNull();
    expect(p.exitDescription()).toBe('signal SIGTERM');
    expect(p.stopping).toBe(true);
    await p.stop(); // idempotent
  });

  it('stop() kills the whole process group when SIGTERM is ignored', async () => {
    const pidFile = path.join(dir, 'grandchild.pid');
    const p = await startProcess({
      name: 'stubborn',
      command: 'sh',
      args: ['-c', `trap '' TERM; sleep 60 & echo $! > ${pidFile}; wait`],
      logFile: path.join(dir, 'stubborn.log'),
      stopTimeoutMs: 300,
    });
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '');
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    const t0 = Date.now();
    await p.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(p.exitDescription()).toBe('signal SIGKILL');
    await waitFor(() => !alive(grandchild));
  });

  it('stop() after the leader died still stops what it left in its group', async () => {
    const pidFile = path.join(dir, 'orphan.pid');
    const p = await startProcess({
      name: 'wrapper',
      command: 'sh',
      args: ['-c', `sleep 60 & echo $! > ${pidFile}; wait`],
      logFile: path.join(dir, 'wrapper.log'),
    });
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '');
    const orphan = Number(fs.readFileSync(pidFile, 'utf8'));
    process.kill(p.pid, 'SIGKILL'); // the wrapper dies, its child lives on
    await p.exited;
    expect(alive(orphan)).toBe(true);
    await p.stop();
    await waitFor(() => !alive(orphan));
  });

  it('echoes prefixed lines when asked', async () => {
    const writes: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      const p = await startProcess({ name: 'api', command: 'sh', args: ['-c', 'echo one; echo two'], echoPrefix: '[api]', logFile: path.join(dir, 'api.log') });
      await p.exited;
      await waitFor(() => writes.join('').includes('[api] two'));
    } finally {
      spy.mockRestore();
    }
    expect(writes.join('')).toBe('[api] one\n[api] two\n');
    await waitFor(() => fs.readFileSync(path.join(dir, 'api.log'), 'utf8') === 'one\ntwo\n');
  });

  it('rejects when the command does not exist', async () => {
    await expect(startProcess({ name: 'nope', command: path.join(dir, 'no-such-binary') })).rejects.toThrow(/cannot start nope/);
  });

  it('which() finds commands on PATH and checks absolute paths', () => {
    expect(which('sh')).toMatch(/\/sh$/);
    expect(which('/bin/sh')).toBe('/bin/sh');
    expect(which('definitely-not-a-command-xyz')).toBeNull();
  });
});

/** Running, not a zombie waiting for pid 1 to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]);
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
