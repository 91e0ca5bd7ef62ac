import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'ssh2';
import { generateEd25519Key, startTestSshd, type TestSshd } from '../../scripts/lib/sshd';
import { stackEnv } from '../support/stack-env';

interface ExecResult {
  stdout: string;
  code: number | null;
  hostFingerprint: string;
}

/** Connects with ssh2, checks the host key against `expectFingerprint` (if given), runs `command`. */
function sshExec(o: { host: string; port: number; user: string; privateKey: string; command: string; expectFingerprint?: string }): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let hostFingerprint = '';
    conn
      .on('ready', () => {
        conn.exec(o.command, (err, stream) => {
          if (err) return reject(err);
          let stdout = '';
          stream.on('data', (d: Buffer) => (stdout += d.toString()));
          stream.stderr.on('data', () => undefined);
          stream.on('close', (code: number | null) => {
            conn.end();
            resolve({ stdout, code, hostFingerprint });
          });
        });
      })
      .on('error', reject)
      .connect({
        host: o.host,
        port: o.port,
        username: o.user,
        privateKey: o.privateKey,
        readyTimeout: 15_000,
        hostVerifier: (key: Buffer) => {
          hostFingerprint = 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
          return o.expectFingerprint === undefined || o.expectFingerprint === hostFingerprint;
        },
      });
  });
}

describe('startTestSshd', () => {
  let dir: string;
  let sshd: TestSshd | undefined;
  let privateKey: string;
  let publicKey: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-sshd-test-'));
    ({ privateKey, publicKey } = await generateEd25519Key(path.join(dir, 'client_key')));
  });
  afterAll(async () => {
    await sshd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a key appended to authorized_keys, runs a command, and presents the advertised host key', async () => {
    sshd = await startTestSshd();
    expect(sshd.host).toBe('127.0.0.1');
    expect(sshd.user).toBe(os.userInfo().username);
    expect(sshd.hostKeyType).toBe('ssh-ed25519');
    expect(sshd.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(fs.statSync(sshd.authorizedKeysFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(sshd.authorizedKeysFile, 'utf8')).toBe('');

    // Not yet authorised.
    await expect(sshExec({ ...sshd, privateKey, command: 'echo ok' })).rejects.toThrow(/authentication/i);

    fs.appendFileSync(sshd.authorizedKeysFile, `${publicKey}\n`);
    const res = await sshExec({ ...sshd, privateKey, command: 'echo ok; echo "PATH=$PATH"', expectFingerprint: sshd.hostKeyFingerprint });
    expect(res.code).toBe(0);
    const [first, pathLine] = res.stdout.trim().split('\n');
    expect(first).toBe('ok');
    const dirs = pathLine.replace(/^PATH=/, '').split(':');
    expect(dirs).toEqual(expect.arrayContaining(['/usr/local/bin', '/usr/bin', '/bin']));
    expect(res.hostFingerprint).toBe(sshd.hostKeyFingerprint);
  });

  it('replaceHostKey() restarts on the same port with a new host key', async () => {
    if (!sshd) throw new Error('previous test did not start sshd');
    const { port } = sshd;
    const before = sshd.hostKeyFingerprint;
    await sshd.replaceHostKey();
    expect(sshd.port).toBe(port);
    expect(sshd.hostKeyFingerprint).not.toBe(before);
    // A client pinned to the old key refuses; the new key is what the server presents.
    await expect(sshExec({ ...sshd, privateKey, command: 'true', expectFingerprint: before })).rejects.toThrow();
    const res = await sshExec({ ...sshd, privateKey, command: 'echo ok', expectFingerprint: sshd.hostKeyFingerprint });
    expect(res.stdout.trim()).toBe('ok');
  });

  it('stop() frees the port and removes its directory', async () => {
    if (!sshd) throw new Error('previous test did not start sshd');
    const dirOf = path.dirname(sshd.authorizedKeysFile);
    await sshd.stop();
    const stopped = sshd;
    sshd = undefined;
    expect(fs.existsSync(dirOf)).toBe(false);
    await expect(sshExec({ ...stopped, privateKey, command: 'true' })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('the suite-wide sshd from globalSetup', () => {
  it('is reachable with a key appended to TEST_SSHD_AUTHORIZED_KEYS', async () => {
    const { sshd } = stackEnv();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-sshd-test-'));
    try {
      const { privateKey, publicKey } = await generateEd25519Key(path.join(dir, 'k'));
      fs.appendFileSync(sshd.authorizedKeysFile, `${publicKey}\n`);
      const res = await sshExec({ ...sshd, privateKey, command: 'echo ok', expectFingerprint: sshd.hostKeyFingerprint });
      expect(res.stdout.trim()).toBe('ok');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
