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
