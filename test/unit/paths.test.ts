import { localPathProblem, repositoryPathProblem } from '../../api/paths';

describe('path guards', () => {
  test.each(['/srv/data', '/home/user/docs', '/', '/devices', '/proceed'])('accept %p', (path) => {
    expect(localPathProblem(path)).toBeNull();
  });

  test.each([
    ['relative/path', 'absolute'],
    ['/srv/../etc', '..'],
    ['/srv/a\nb', 'control'],
    ['/proc', '/proc'],
    ['/proc/self/environ', '/proc'],
    ['/sys/kernel', '/sys'],
    ['/dev/sda', '/dev'],
  ])('refuse %p', (path, reason) => {
    expect(localPathProblem(path)).toContain(reason);
  });

  test('repository locations may be restic backend strings', () => {
    expect(repositoryPathProblem('sftp:backup@nas:/srv/restic')).toBeNull();
    expect(repositoryPathProblem('rclone:remote:bucket/path')).toBeNull();
    expect(repositoryPathProblem('s3:https://s3.example.org/bucket')).toBeNull();
    expect(repositoryPathProblem('unknown:thing')).toContain('absolute');
    expect(repositoryPathProblem('/srv/restic')).toBeNull();
  });
});

describe('path guards against disguised paths and option injection', () => {
  test.each(['//proc/1/environ', '/./proc/self/cmdline', '/srv//data', '/srv/./data', '///sys'])('refuse the non-normal %p', (path) => {
    expect(localPathProblem(path)).not.toBeNull();
  });

  test('a trailing slash is still normal form', () => {
    expect(localPathProblem('/srv/data/')).toBeNull();
  });

  test.each([
    'rclone:--log-file=/tmp/x',
    'rclone:-vv remote:path',
    'sftp:-oProxyCommand=touch /tmp/x',
    'rclone:remote:path with space',
    'rest:https://bob:secret@rest.example.org/',
    'rest:http://:secret@rest.example.org/',
  ])('refuse the backend string %p', (path) => {
    expect(repositoryPathProblem(path)).not.toBeNull();
  });

  test.each(['rclone:remote:bucket/path', 'sftp:backup@nas:/srv/restic', 'sftp://backup@nas:2222//srv/restic', 'rest:https://rest.example.org/repo', 's3:s3.amazonaws.com/bucket', 'sftp:[::1]:/srv/restic'])(
    'accept the backend string %p',
    (path) => expect(repositoryPathProblem(path)).toBeNull(),
  );
});
