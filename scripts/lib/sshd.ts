import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './ports';
import { startProcess, type ManagedProcess } from './processes';

const execFileAsync = promisify(execFile);

export const SSHD_BINARY = '/usr/sbin/sshd';
export const SSH_KEYGEN = '/usr/bin/ssh-keygen';

export interface TestSshd {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The user sessions run as (the current user). */
  readonly user: string;
  /** Empty at start, mode 0600; append OpenSSH public key lines to let a key in. */
  readonly authorizedKeysFile: string;
  /** `SHA256:...` as `ssh-keygen -lf` prints it; changes with replaceHostKey(). */
  readonly hostKeyFingerprint: string;
  /** e.g. `ssh-ed25519`. */
  readonly hostKeyType: string;
  /** The host public key line (`ssh-ed25519 AAAA...`), e.g. for a known_hosts entry. */
  readonly hostPublicKey: string;
  /** sshd's own log (`-e`). */
  readonly logFile: string;
  /** Generates a new host key and restarts sshd on the same port ("host key changed" tests). */
  replaceHostKey(): Promise<void>;
  /** Stops sshd (and the sessions it forked) and removes its temp directory. */
  stop(): Promise<void>;
}

export interface StartTestSshdOptions {
  /** Where config, keys and the log go (default: a new temp dir, removed by stop()). */
  dir?: string;
}

/** `SHA256:...` fingerprint of a public key file, as `ssh-keygen -lf` prints it. */
export async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const { stdout } = await execFileAsync(SSH_KEYGEN, ['-l', '-E', 'sha256', '-f', publicKeyFile]);
  const fp = stdout.trim().split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${stdout.trim()}`);
  return fp;
}

/** Generates an ed25519 key pair without passphrase at `file` / `file.pub`. */
export async function generateEd25519Key(file: string, comment = 'backup-control-plane-test'): Promise<{ privateKey: string; publicKey: string }> {
  await fsp.rm(file, { force: true });
  await fsp.rm(`${file}.pub`, { force: true });
  await execFileAsync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return { privateKey: await fsp.readFile(file, 'utf8'), publicKey: (await fsp.readFile(`${file}.pub`, 'utf8')).trim() };
}

function sshdConfig(o: { port: number; hostKey: string; authorizedKeys: string; pidFile: string }): string {
  return [
    'ListenAddress 127.0.0.1',
    `Port ${o.port}`,
    `HostKey ${o.hostKey}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    `PidFile ${o.pidFile}`,
    'PubkeyAuthentication yes',
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'Subsystem sftp internal-sftp',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    // Test suites open many connections at once.
    'MaxStartups 200:30:400',
    'MaxSessions 200',
    'LogLevel INFO',
    '',
  ].join('\n');
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await fsp.readFile(file, 'utf8')).trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Starts Debian's sshd on a free loopback port with a private config, its own ed25519 host
 * key and an empty authorized_keys file (key-only login as the current user).
 */
export async function startTestSshd(options: StartTestSshdOptions = {}): Promise<TestSshd> {
  if (!fs.existsSync(SSHD_BINARY)) {
    throw new Error(`${SSHD_BINARY} is missing: install openssh-server (ensureDebianPackages does, as root)`);
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'bcp-sshd-')));
  await fsp.mkdir(dir, { recursive: true });
  // Privilege separation directory that Debian's sshd expects (normally made by systemd).
  await fsp.mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => undefined);

  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const authorizedKeysFile = path.join(dir, 'authorized_keys');
  const configFile = path.join(dir, 'sshd_config');
  const pidFile = path.join(dir, 'sshd.pid');
  const logFile = path.join(dir, 'sshd.log');
  await fsp.writeFile(authorizedKeysFile, '', { mode: 0o600 });

  let hostPublicKey = '';
  let hostKeyFingerprint = '';
  let hostKeyType = '';
  const newHostKey = async (): Promise<void> => {
    const { publicKey } = await generateEd25519Key(hostKey, 'backup-control-plane-test-host');
    hostPublicKey = publicKey.split(/\s+/).slice(0, 2).join(' ');
    hostKeyType = publicKey.split(/\s+/)[0];
    hostKeyFingerprint = await fingerprintOf(`${hostKey}.pub`);
  };

  let port = 0;
  let proc: ManagedProcess | null = null;
  const launch = async (): Promise<void> => {
    await fsp.writeFile(configFile, sshdConfig({ port, hostKey, authorizedKeys: authorizedKeysFile, pidFile }), { mode: 0o600 });
    const started = await startProcess({
      name: 'sshd',
      command: SSHD_BINARY,
      args: ['-D', '-e', '-f', configFile],
      logFile,
      stopTimeoutMs: 5000,
    });
    try {
      await waitForPort('127.0.0.1', port, 15_000, started.exited);
    } catch (err) {
      await started.stop();
      throw new Error(`sshd did not start on 127.0.0.1:${port}: ${(err as Error).message}\n${await tail(logFile)}`);
    }
    proc = started;
  };

  await newHostKey();
  // The free port can be taken between the probe and sshd's bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) {
        if (ownDir) await fsp.rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const sshd = {
    host: '127.0.0.1' as const,
    get port() {
      return port;
    },
    user: os.userInfo().username,
    authorizedKeysFile,
    get hostKeyFingerprint() {
      return hostKeyFingerprint;
    },
    get hostKeyType() {
      return hostKeyType;
    },
    get hostPublicKey() {
      return hostPublicKey;
    },
    logFile,
    async replaceHostKey(): Promise<void> {
      await proc?.stop();
      proc = null;
      await newHostKey();
      await launch();
    },
    async stop(): Promise<void> {
      await proc?.stop();
      proc = null;
      if (ownDir) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  return sshd;
}
