import { Client } from 'ssh2';
import { FailureType } from '../common/failures';
import { fingerprintOf, keyTypeOf } from '../common/ssh-fingerprint';
import { typedFailure } from './failure';

export interface SshTarget {
  hostname: string;
  port: number;
  user: string;
  privateKey: string;
  /** `SHA256:...`; null accepts any key (trust on first use: the caller pins what it saw). */
  pinnedFingerprint: string | null;
  readyTimeoutMs?: number;
}

export interface HostKeyInfo {
  fingerprint: string;
  type: string;
  /** The key blob, base64, as in a known_hosts line. */
  publicKey: string;
}

export function hostKeyInfo(keyBlob: Buffer): HostKeyInfo {
  return { fingerprint: fingerprintOf(keyBlob), type: keyTypeOf(keyBlob), publicKey: keyBlob.toString('base64') };
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET']);

/**
 * Connects and authenticates, checking the server's host key against the pinned fingerprint.
 * Rejects with a typed ApplicationFailure: HostKeyMismatch, SshAuthFailed, HostUnreachable or SshError.
 */
export function openSsh(target: SshTarget): Promise<{ client: Client; hostKey: HostKeyInfo }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen: HostKeyInfo | null = null;
    let mismatch = false;
    client.on('ready', () => resolve({ client, hostKey: seen as HostKeyInfo }));
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      client.end();
      const where = `${target.user}@${target.hostname}:${target.port}`;
      // What the server presented, if the handshake got that far: callers report it.
      const details = { expected: target.pinnedFingerprint, seen: seen ? { fingerprint: seen.fingerprint, type: seen.type } : null };
      if (mismatch && seen) {
        reject(
          typedFailure(
            FailureType.HostKeyMismatch,
            `host key of ${target.hostname}:${target.port} changed: expected ${target.pinnedFingerprint}, got ${seen.fingerprint}`,
            details,
          ),
        );
      } else if (error.level === 'client-authentication') {
        reject(typedFailure(FailureType.SshAuthFailed, `authentication as ${where} failed: the key was not accepted`, details));
      } else if (error.level === 'client-timeout' || (error.code && UNREACHABLE_CODES.has(error.code))) {
        reject(typedFailure(FailureType.HostUnreachable, `cannot reach ${where}: ${error.code ?? error.message}`, details));
      } else if (/passphrase|private key|Cannot parse/i.test(error.message)) {
        reject(typedFailure(FailureType.InvalidConfiguration, `the SSH key cannot be used: ${error.message}`, details));
      } else {
        reject(typedFailure(FailureType.SshError, `SSH to ${where} failed: ${error.message}`, details));
      }
    });
    try {
      client.connect({
        host: target.hostname,
        port: target.port,
        username: target.user,
        privateKey: target.privateKey,
        readyTimeout: target.readyTimeoutMs ?? 20_000,
        hostVerifier: (key: Buffer) => {
          seen = hostKeyInfo(key);
          mismatch = target.pinnedFingerprint !== null && seen.fingerprint !== target.pinnedFingerprint;
          return !mismatch;
        },
      });
    } catch (error) {
      reject(typedFailure(FailureType.InvalidConfiguration, `the SSH key cannot be used: ${(error as Error).message}`));
    }
  });
}
