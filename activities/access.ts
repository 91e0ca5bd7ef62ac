import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailureType } from '../common/failures';
import { Repo, type Host } from '../db/entities';
import { type SecretBox, SecretPurpose } from '../db/secret-box';
import type { ActivityDeps } from './deps';
import { localExecutor, sshExecutor, type Executor } from './executors';
import { typedFailure } from './failure';
import type { RepositoryAccess } from './restic';
import { openSsh, type SshTarget } from './ssh';

/** A repository with what opening it needs (its SSH host and key, for sftp). */
export async function loadRepository(deps: ActivityDeps, repoId: number): Promise<Repo> {
  const repo = await deps.orm.em.fork().findOne(Repo, repoId, { populate: ['sshHost', 'sshHost.sshKey'] });
  if (!repo) throw typedFailure(FailureType.InvalidConfiguration, `repository ${repoId} no longer exists`);
  return repo;
}

/** The SSH connection details of a host, with its private key opened. */
export function sshTargetForHost(host: Host, secrets: SecretBox, options: { requirePinnedKey: boolean }): SshTarget {
  if (!host.sshKey) {
    throw typedFailure(FailureType.InvalidConfiguration, `host ${host.name} has no SSH key`, { code: 'no_ssh_key' });
  }
  if (options.requirePinnedKey && !host.hostKeyFingerprint) {
    throw typedFailure(
      FailureType.HostKeyNotPinned,
      `the host key of ${host.name} is not pinned yet: test the host (POST /hosts/${host.id}/test) before running jobs on it`,
    );
  }
  return {
    hostname: host.hostname,
    port: host.port,
    user: host.user,
    privateKey: secrets.open(host.sshKey.privateKeySecret, SecretPurpose.sshPrivateKey),
    pinnedFingerprint: host.hostKeyFingerprint,
  };
}

export function repositoryPassword(repo: Repo, secrets: SecretBox): string {
  if (!repo.passwordSecret) {
    throw typedFailure(FailureType.InvalidConfiguration, `repository ${repo.name} has no password stored`);
  }
  return secrets.open(repo.passwordSecret, SecretPurpose.repoPassword);
}

/**
 * Opens a repository from the worker. For `sftp:` repositories OpenSSH gets the key and the
 * pinned host key of the repository's SSH host (see withOpenSsh).
 */
export async function withRepositoryAccess<T>(
  repo: Repo,
  secrets: SecretBox,
  use: (access: RepositoryAccess) => Promise<T>,
): Promise<T> {
  const password = repositoryPassword(repo, secrets);
  if (!repo.path.startsWith('sftp:') || !repo.sshHost) return use({ repository: repo.path, password });
  const host = repo.sshHost;
  return withOpenSsh(host, secrets, (ssh) => {
    const command = [...ssh, `${host.user}@${host.hostname}`, '-s', 'sftp'].join(' ');
    return use({ repository: repo.path, password, options: [`sftp.command=${command}`] });
  });
}

/**
 * The OpenSSH command line (without its destination) that reaches a host with its key and only
 * its pinned host key: both are written to a private temporary directory, removed afterwards.
 */
export async function withOpenSsh<T>(host: Host, secrets: SecretBox, use: (ssh: string[]) => Promise<T>): Promise<T> {
  const target = sshTargetForHost(host, secrets, { requirePinnedKey: true });
  if (!host.hostPublicKey || !host.hostKeyType) {
    // A fingerprint alone cannot make a known_hosts line for OpenSSH.
    throw typedFailure(FailureType.HostKeyNotPinned, `only the fingerprint of ${host.name}'s host key is known: test the host (POST /hosts/${host.id}/test) to record the key itself`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'bcp-ssh-'));
  try {
    const keyFile = join(dir, 'id');
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(keyFile, target.privateKey.endsWith('\n') ? target.privateKey : `${target.privateKey}\n`, { mode: 0o600 });
    const hostPattern = host.port === 22 ? host.hostname : `[${host.hostname}]:${host.port}`;
    await writeFile(knownHosts, `${hostPattern} ${host.hostKeyType} ${host.hostPublicKey}\n`, { mode: 0o600 });
    return await use([
      'ssh', '-i', keyFile, '-p', String(host.port), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Where a restic command runs: on the worker, or on a host over SSH against the path the host sees. */
export interface ResticPlace {
  repo: Repo;
  host: Host | null;
  remoteRepoPath?: string | null;
}

export interface ResticSession {
  exec: Executor;
  binary: string;
  access: RepositoryAccess;
}

/** Opens what a restic command needs at `place` (an SSH session or local sftp files) and closes it after. */
export async function withResticSession<T>(deps: ActivityDeps, place: ResticPlace, use: (session: ResticSession) => Promise<T>): Promise<T> {
  const { host, repo } = place;
  if (!host) {
    return withRepositoryAccess(repo, deps.secrets, (access) => use({ exec: localExecutor, binary: deps.resticBinary, access }));
  }
  const { client } = await openSsh(sshTargetForHost(host, deps.secrets, { requirePinnedKey: true }));
  try {
    const access = { repository: place.remoteRepoPath ?? repo.path, password: repositoryPassword(repo, deps.secrets) };
    return await use({ exec: sshExecutor(client), binary: host.resticPath, access });
  } finally {
    client.end();
  }
}

/** Hands restic the password in a 0600 file of a private temporary directory, removed afterwards. */
export async function withPasswordFile<T>(access: RepositoryAccess, use: (access: RepositoryAccess) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'bcp-pw-'));
  try {
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, access.password, { mode: 0o600 });
    return await use({ ...access, passwordFile });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
