/**
 * The test stack provisioned by test/support/global-setup.ts, as seen from a test file.
 * globalSetup exports it through environment variables, which jest's workers inherit.
 */

export interface StackEnv {
  /** A URL whose user may CREATE DATABASE (per-test-file databases are made from it). */
  pgAdminUrl: string;
  temporal: {
    address: string;
    namespace: string;
  };
  /** Absolute path of the restic binary for local runs. */
  resticBinary: string;
  /** The loopback SSH test host (Debian openssh-server, key-only login). */
  sshd: {
    host: string;
    port: number;
    user: string;
    /** Append OpenSSH public key lines here to let a key in (shared by all test files). */
    authorizedKeysFile: string;
    /** `SHA256:...`, as `ssh-keygen -lf` prints it. */
    hostKeyFingerprint: string;
  };
  /** Where the stack's logs (Temporal, sshd, embedded Postgres) are written during the run. */
  logDir: string;
}

/** The environment variables globalSetup sets, by name. */
export const STACK_ENV_VARS = {
  pgAdminUrl: 'TEST_PG_ADMIN_URL',
  temporalAddress: 'TEMPORAL_ADDRESS',
  temporalNamespace: 'TEMPORAL_NAMESPACE',
  resticBinary: 'RESTIC_BINARY',
  sshdHost: 'TEST_SSHD_HOST',
  sshdPort: 'TEST_SSHD_PORT',
  sshdUser: 'TEST_SSHD_USER',
  sshdAuthorizedKeys: 'TEST_SSHD_AUTHORIZED_KEYS',
  sshdHostFingerprint: 'TEST_SSHD_HOST_FINGERPRINT',
  logDir: 'TEST_STACK_LOG_DIR',
} as const;

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: the test stack is provisioned by jest's globalSetup (test/support/global-setup.ts); run the tests with npm test or npx jest`,
    );
  }
  return value;
}

/** The provisioned stack; throws a clear error when run outside jest's globalSetup. */
export function stackEnv(): StackEnv {
  const v = STACK_ENV_VARS;
  return {
    pgAdminUrl: required(v.pgAdminUrl),
    temporal: {
      address: required(v.temporalAddress),
      namespace: process.env[v.temporalNamespace] || 'default',
    },
    resticBinary: required(v.resticBinary),
    sshd: {
      host: required(v.sshdHost),
      port: Number(required(v.sshdPort)),
      user: required(v.sshdUser),
      authorizedKeysFile: required(v.sshdAuthorizedKeys),
      hostKeyFingerprint: required(v.sshdHostFingerprint),
    },
    logDir: required(v.logDir),
  };
}
