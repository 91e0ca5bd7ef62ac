import { userPermissions } from '../../api/auth/roles';
import { ALL_SCOPES, effectiveScopes } from '../../api/auth/scopes';
import { generateToken, hashToken, isWellFormedToken } from '../../api/auth/tokens';

describe('API tokens', () => {
  test('look like rui_<8 hex>_<40 hex> and are stored as their sha256', () => {
    const { token, prefix, hash } = generateToken();
    expect(token).toMatch(/^rui_[0-9a-f]{8}_[0-9a-f]{40}$/);
    expect(token.startsWith(`rui_${prefix}_`)).toBe(true);
    expect(hash).toBe(hashToken(token));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token.slice(13));
  });

  test('are random', () => {
    const tokens = new Set(Array.from({ length: 100 }, () => generateToken().token));
    expect(tokens.size).toBe(100);
  });

  test.each(['', 'rui_', 'rui_1234567_' + 'a'.repeat(40), 'rui_12345678_' + 'A'.repeat(40), 'Bearer rui_12345678_' + 'a'.repeat(40), 'rui_12345678_' + 'a'.repeat(41)])(
    'reject the malformed %p',
    (candidate) => expect(isWellFormedToken(candidate)).toBe(false),
  );
});

describe('effective scopes', () => {
  const admin = userPermissions({ role: 'admin', permissions: null });
  const viewer = userPermissions({ role: 'viewer', permissions: null });

  test('the catalogue has the 34 scopes of the reference', () => {
    expect(ALL_SCOPES).toHaveLength(34);
  });

  test('an admin token keeps all its scopes', () => {
    expect(effectiveScopes(ALL_SCOPES, admin, false).size).toBe(34);
  });

  test('are the token scopes within what the user may do', () => {
    const scopes = effectiveScopes(['repos:read', 'repos:write', 'me:read', 'api_tokens:read'], viewer, false);
    expect([...scopes].sort()).toEqual(['api_tokens:read', 'me:read', 'repos:read']);
  });

  test('read-only tokens lose every write, run and check scope', () => {
    const scopes = effectiveScopes(['repos:read', 'repos:write', 'repos:check', 'backup_jobs:run', 'snapshots:read'], admin, true);
    expect([...scopes].sort()).toEqual(['repos:read', 'snapshots:read']);
  });

  test('unknown scopes are ignored', () => {
    expect([...effectiveScopes(['repos:read', 'root:all'], admin, false)]).toEqual(['repos:read']);
  });

  test('per-user permission overrides replace the role defaults', () => {
    const custom = userPermissions({ role: 'admin', permissions: ['repos.view'] });
    expect([...effectiveScopes(['repos:read', 'hosts:read'], custom, false)]).toEqual(['repos:read']);
  });

  test('roles grant the reference mapping', () => {
    expect([...userPermissions({ role: 'operator', permissions: null })].sort()).toEqual(
      ['backup_jobs.manage', 'copy_jobs.manage', 'logs.view', 'repos.view', 'stats.view'],
    );
    expect(userPermissions({ role: 'restore-operator', permissions: null }).has('restore.run')).toBe(true);
    expect(userPermissions({ role: 'nobody', permissions: null }).size).toBe(0);
  });
});
