import { ApplicationFailure } from '@temporalio/common';
import { failureCode } from '../../common/failures';
import { COMMAND_NOT_FOUND, shellQuote, type Executor, type ExecOptions } from '../../activities/executors';
import { lineSplitter } from '../../activities/lines';
import { backupArgs, globalArgs, resticFailure, runRestic } from '../../activities/restic';
import { protectedPathIn } from '../../activities/backup';

describe('restic command lines', () => {
  const access = { repository: '/srv/repo', password: 's3cret!' };

  test('never carry the password', () => {
    const argv = [...globalArgs('restic', access), ...backupArgs({ sourcePaths: ['/a'], excludes: [], tags: [], hostname: null })];
    expect(argv.join(' ')).not.toContain('s3cret');
    expect(globalArgs('restic', { ...access, passwordFile: '/tmp/x/password' })).toEqual(['restic', '-r', '/srv/repo', '--password-file', '/tmp/x/password']);
  });

  test('backup: tags, excludes, host and paths after --', () => {
    expect(backupArgs({ sourcePaths: ['/etc', '/-weird'], excludes: ['*.tmp', 'cache/'], tags: ['daily', 'db'], hostname: 'web-1' })).toEqual([
      'backup', '--json', '--tag', 'daily', '--tag', 'db', '--exclude', '*.tmp', '--exclude', 'cache/', '--host', 'web-1', '--', '/etc', '/-weird',
    ]);
  });

  test.each([
    ['simple', 'simple'],
    ['/path/with space', `'/path/with space'`],
    [`it's`, `'it'\\''s'`],
    ['$(rm -rf /)', `'$(rm -rf /)'`],
    ['', `''`],
  ])('shell quoting of %p', (input, expected) => expect(shellQuote(input)).toBe(expected));
});

describe('running restic', () => {
  function fakeExecutor(exitCode: number, stdout: string[], stderr: string[]): { exec: Executor; seen: { argv: string[]; options: ExecOptions }[] } {
    const seen: { argv: string[]; options: ExecOptions }[] = [];
    const exec: Executor = async (argv, options) => {
      seen.push({ argv, options });
      stdout.forEach((line) => options.onStdoutLine?.(line));
      stderr.forEach((line) => options.onStderrLine?.(line));
      return exitCode;
    };
    return { exec, seen };
  }

  test('sends the password on stdin and sorts restic output into progress, warnings and the exit error', async () => {
    const { exec, seen } = fakeExecutor(3, [
      '{"message_type":"status","percent_done":0.5}',
      '{"message_type":"summary","snapshot_id":"abc"}',
      'plain line',
    ], [
      '{"message_type":"error","error":{"message":"permission denied"},"during":"archival","item":"/etc/shadow"}',
      '/nonexistent does not exist, skipping',
    ]);
    const json: unknown[] = [];
    const result = await runRestic(exec, 'restic', { repository: '/r', password: 'pw' }, ['backup'], { onJson: (m) => json.push(m) });
    expect(seen[0]?.options.stdin).toBe('pw\n');
    expect(seen[0]?.argv).toEqual(['restic', '-r', '/r', 'backup']);
    expect(json).toHaveLength(2);
    expect(result.exitCode).toBe(3);
    expect(result.warnings).toEqual(['/etc/shadow: permission denied', '/nonexistent does not exist, skipping']);
    expect(result.exitError).toBeNull();
  });

  test.each([
    [12, 'WrongPassword', true],
    [10, 'RepositoryNotFound', true],
    [11, 'RepositoryLocked', false],
    [COMMAND_NOT_FOUND, 'ResticMissing', true],
    [1, 'ResticFailed', false],
  ])('exit code %p is a %s failure (non-retryable: %p)', async (code, type, nonRetryable) => {
    const { exec } = fakeExecutor(code, [], [`{"message_type":"exit_error","code":${code},"message":"Fatal: something"}`]);
    const result = await runRestic(exec, 'restic', { repository: '/r', password: 'pw' }, ['snapshots']);
    const failure = resticFailure(result, 'listing failed');
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe(type);
    expect(failure.nonRetryable).toBe(nonRetryable);
    expect(failure.message).toContain('listing failed');
    expect(failure.message).toContain('something');
    expect(failure.message).not.toContain('pw');
  });

  test('failure codes are the snake_case of the type', () => {
    expect(failureCode('WrongPassword')).toBe('wrong_password');
    expect(failureCode('HostKeyMismatch')).toBe('host_key_mismatch');
    expect(failureCode(undefined)).toBe('internal_error');
  });
});

describe('lineSplitter', () => {
  test('joins chunks into whole lines and flushes the tail', () => {
    const lines: string[] = [];
    const splitter = lineSplitter((l) => lines.push(l));
    splitter.push('ab');
    splitter.push('c\r\nde');
    splitter.push(Buffer.from('f\ng'));
    expect(lines).toEqual(['abc', 'def']);
    splitter.end();
    expect(lines).toEqual(['abc', 'def', 'g']);
  });
});

describe('protected paths', () => {
  const key = '/srv/control-plane/.data/secret.key';
  test.each([
    [['/'], key],
    [['/srv'], key],
    [['/srv/control-plane/.data/'], key],
    [['/etc', key], key],
    [['/srv/control'], null],
    [['/etc', '/var'], null],
  ])('a backup of %p reads %p', (sources, expected) => {
    expect(protectedPathIn(sources, [key])).toBe(expected);
  });
});
