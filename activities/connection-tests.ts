import { ApplicationFailure } from '@temporalio/common';
import type { components } from '../api/contract.gen';
import { FailureType } from '../common/failures';
import { Host, SshKey } from '../db/entities';
import { SecretPurpose } from '../db/secret-box';
import { sshTargetForHost } from './access';
import type { ActivityDeps } from './deps';
import { sshExecutor } from './executors';
import { openSsh, type HostKeyInfo, type SshTarget } from './ssh';

export type HostTestResult = components['schemas']['HostTestResult'];
export type SshKeyTestResult = components['schemas']['SshKeyTestResult'];
type ConnectionError = NonNullable<HostTestResult['error']>;

const CONNECTION_ERROR_CODES: Record<string, ConnectionError['code']> = {
  [FailureType.HostKeyMismatch]: 'host_key_mismatch',
  [FailureType.HostUnreachable]: 'unreachable',
  [FailureType.SshAuthFailed]: 'auth_failed',
  [FailureType.InvalidConfiguration]: 'ssh_error',
};

type SeenKey = { fingerprint: string; type: string };

interface Attempt<T> {
  /** The key the server presented during the handshake, logged in or not. */
  seen: SeenKey | null;
  mismatch: boolean;
  /** Set once logged in. */
  hostKey: HostKeyInfo | null;
  error: ConnectionError | null;
  value?: T;
}

/** Connects once; a refused key, an unreachable host or a changed host key are results, not exceptions. */
async function tryConnect<T>(target: SshTarget, use: (session: Awaited<ReturnType<typeof openSsh>>) => Promise<T>): Promise<Attempt<T>> {
  try {
    const session = await openSsh(target);
    try {
      const { fingerprint, type } = session.hostKey;
      return { seen: { fingerprint, type }, mismatch: false, hostKey: session.hostKey, error: null, value: await use(session) };
    } finally {
      session.client.end();
    }
  } catch (error) {
    if (!(error instanceof ApplicationFailure)) throw error;
    const details = (error.details?.[0] ?? null) as { seen?: SeenKey | null } | null;
    return {
      seen: details?.seen ?? null,
      mismatch: error.type === FailureType.HostKeyMismatch,
      hostKey: null,
      error: { code: CONNECTION_ERROR_CODES[error.type ?? ''] ?? 'ssh_error', message: error.message },
    };
  }
}

/** Connection checks behind POST /hosts/{id}/test and POST /ssh-keys/{id}/test. */
export function connectionTestActivities(deps: ActivityDeps) {
  return {
    /** Connects to a host, pins its key on first use, and checks that restic runs there. */
    async testHostConnection({ hostId }: { hostId: number }): Promise<HostTestResult> {
      const em = deps.orm.em.fork();
      const host = await em.findOneOrFail(Host, hostId, { populate: ['sshKey'] });
      const started = Date.now();
      const expected = host.hostKeyFingerprint;
      if (!host.sshKey) {
        return {
          success: false, latency_ms: 0, host_key: null, expected_fingerprint: expected, restic: null,
          error: { code: 'no_ssh_key', message: `host ${host.name} has no SSH key: set ssh_key_id first` },
        };
      }
      const attempt = await tryConnect(sshTargetForHost(host, deps.secrets, { requirePinnedKey: false }), async ({ client }) => {
        let output = '';
        const exitCode = await sshExecutor(client)([host.resticPath, 'version'], { onStdoutLine: (l) => (output += `${l}\n`) });
        const version = /restic ([0-9][^\s]*)/.exec(output)?.[1] ?? null;
        return { available: exitCode === 0, path: host.resticPath, version };
      });
      const latency = Date.now() - started;

      if (!attempt.hostKey) {
        // Without a login nothing is pinned; a key seen in the handshake is still reported.
        const { seen } = attempt;
        const hostKey = !seen ? null : attempt.mismatch ? { ...seen, status: 'mismatch' as const } : seen.fingerprint === expected ? { ...seen, status: 'verified' as const } : null;
        return { success: false, latency_ms: latency, expected_fingerprint: expected, restic: null, error: attempt.error, host_key: hostKey };
      }
      let status: 'pinned' | 'verified' = 'verified';
      if (expected && !host.hostPublicKey) {
        // Pinned by fingerprint up front: keep the key that matched it, for OpenSSH known_hosts files.
        await em.nativeUpdate(Host, { id: host.id, hostKeyFingerprint: expected }, { hostKeyType: attempt.hostKey.type, hostPublicKey: attempt.hostKey.publicKey });
      }
      if (!expected) {
        // Trust on first use; the condition keeps a concurrent test from pinning a different key.
        const pinned = await em.nativeUpdate(
          Host,
          { id: host.id, hostKeyFingerprint: null },
          { hostKeyFingerprint: attempt.hostKey.fingerprint, hostKeyType: attempt.hostKey.type, hostPublicKey: attempt.hostKey.publicKey, hostKeyPinnedAt: new Date() },
        );
        if (pinned === 1) status = 'pinned';
      }
      const restic = attempt.value ?? null;
      const resticOk = restic?.available === true;
      return {
        success: resticOk,
        latency_ms: latency,
        host_key: { fingerprint: attempt.hostKey.fingerprint, type: attempt.hostKey.type, status },
        expected_fingerprint: expected,
        restic,
        error: resticOk ? null : { code: 'restic_missing', message: `restic did not run at ${host.resticPath} on ${host.name}` },
      };
    },

    /** Logs in with a key at its own host/user/port; the host key is checked against a pinned host with that address. */
    async testSshKeyConnection({ sshKeyId }: { sshKeyId: number }): Promise<SshKeyTestResult> {
      const em = deps.orm.em.fork();
      const key = await em.findOneOrFail(SshKey, sshKeyId);
      const pinnedHost = await em.findOne(Host, { hostname: key.host, port: key.port, hostKeyFingerprint: { $ne: null } });
      const pinned = pinnedHost?.hostKeyFingerprint ?? null;
      const started = Date.now();
      const attempt = await tryConnect(
        {
          hostname: key.host,
          port: key.port,
          user: key.user,
          privateKey: deps.secrets.open(key.privateKeySecret, SecretPurpose.sshPrivateKey),
          pinnedFingerprint: pinned,
        },
        async () => true,
      );
      const latency = Date.now() - started;
      const { seen } = attempt;
      return {
        success: attempt.error === null,
        latency_ms: latency,
        host_key: seen ? { ...seen, status: attempt.mismatch ? 'mismatch' : pinned ? 'verified' : 'unpinned' } : null,
        error: attempt.error,
      };
    },
  };
}
