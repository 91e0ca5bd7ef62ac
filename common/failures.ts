/**
 * Failure kinds raised by activities, as Temporal ApplicationFailure types. Workflows and the
 * API read them, so this module holds names only (no I/O): safe to import from workflow code.
 */
export const FailureType = {
  WrongPassword: 'WrongPassword',
  RepositoryNotFound: 'RepositoryNotFound',
  RepositoryLocked: 'RepositoryLocked',
  RepositoryAlreadyInitialized: 'RepositoryAlreadyInitialized',
  ResticFailed: 'ResticFailed',
  ResticMissing: 'ResticMissing',
  HostUnreachable: 'HostUnreachable',
  HostKeyMismatch: 'HostKeyMismatch',
  HostKeyNotPinned: 'HostKeyNotPinned',
  SshAuthFailed: 'SshAuthFailed',
  SshError: 'SshError',
  InvalidConfiguration: 'InvalidConfiguration',
  SnapshotNotFound: 'SnapshotNotFound',
  PathNotFound: 'PathNotFound',
  NotADirectory: 'NotADirectory',
  HookFailed: 'HookFailed',
  HookNotAllowed: 'HookNotAllowed',
  DiskFull: 'DiskFull',
} as const;

export type FailureTypeName = (typeof FailureType)[keyof typeof FailureType];

/** Failures that another attempt cannot fix: retrying them would only hammer the target. */
export const NON_RETRYABLE_FAILURES: FailureTypeName[] = [
  FailureType.WrongPassword,
  FailureType.RepositoryNotFound,
  FailureType.RepositoryAlreadyInitialized,
  FailureType.ResticMissing,
  FailureType.HostKeyMismatch,
  FailureType.HostKeyNotPinned,
  FailureType.SshAuthFailed,
  FailureType.InvalidConfiguration,
  FailureType.SnapshotNotFound,
  FailureType.PathNotFound,
  FailureType.NotADirectory,
  FailureType.HookFailed,
  FailureType.HookNotAllowed,
  FailureType.DiskFull,
];

/** The snake_case code the API shows for a failure type (`WrongPassword` -> `wrong_password`). */
export function failureCode(type: string | undefined | null): string {
  if (!type) return 'internal_error';
  return type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}
