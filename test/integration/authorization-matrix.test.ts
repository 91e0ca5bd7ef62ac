import { randomBytes } from 'node:crypto';
import type { Operation } from 'openapi-backend';
import { mock } from 'mock-json-schema';
import { SCOPES, type Scope } from '../../api/auth/scopes';
import { contractBackend, readContract } from '../../api/contract';
import type { ApiResponse } from '../support/api-client';
import { startHarness, type Caller, type Harness } from '../support/harness';
import { expectError, unique } from '../support/expectations';

/**
 * Every operation of the contract against every way a request can be unauthorised. The
 * operations come from openapi.yaml, so a new route is in the matrix the day it is added.
 */
type ContractOperation = Operation & {
  'x-resource-scope'?: Record<string, string>;
  'x-resource-create'?: 'repo' | 'host';
  'x-resource-scope-all'?: boolean;
};

/** Path prefixes whose `{id}` names a repository- or host-bound resource. */
const SCOPED_PREFIXES = ['/repos/{id}', '/hosts/{id}', '/backup-jobs/{id}', '/ssh-keys/{id}', '/stats/repos/{id}', '/copy-jobs/{id}', '/restores/{id}'];

let h: Harness;
let operations: ContractOperation[];
const ids = { repo: 0, otherRepo: 0, host: 0, otherHost: 0, sshKey: 0, job: 0, copyJob: 0, apiToken: 0 };
let callers: Record<string, Caller>;

const randomToken = () => `rui_${randomBytes(4).toString('hex')}_${randomBytes(20).toString('hex')}`;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  operations = ((await contractBackend(readContract())).getOperations() as ContractOperation[]).filter((o) => (o.security ?? []).length > 0);

  const created = async (path: string, body: Record<string, unknown>) => {
    const res = await h.api.post(path, body);
    expect(res.status).toBe(201);
    return res.body.data.id as number;
  };
  ids.repo = await created('/repos', { name: `repo-${unique()}`, path: `/srv/matrix/${unique()}`, password: 'matrix-pw' });
  ids.otherRepo = await created('/repos', { name: `repo-${unique()}`, path: `/srv/matrix/${unique()}`, password: 'matrix-pw' });
  ids.sshKey = await created('/ssh-keys', { name: `key-${unique()}`, host: 'backup.example.internal' });
  ids.host = await created('/hosts', { name: `host-${unique()}`, hostname: 'backup.example.internal', ssh_key_id: ids.sshKey });
  ids.otherHost = await created('/hosts', { name: `host-${unique()}`, hostname: 'other.example.internal' });
  ids.job = await created('/backup-jobs', { name: `job-${unique()}`, repo_id: ids.repo, host_id: ids.host, source_paths: ['/etc'] });
  ids.copyJob = await created('/copy-jobs', { name: `copy-${unique()}`, source_repo_id: ids.repo, dest_path: `/srv/matrix/${unique()}`, dest_password: 'matrix-pw' });

  // The catalogues count as read: listing snapshots must not wait for a worker this suite does not run.
  await h.sql('update repos set snapshots_refreshed_at = now()');
  // A fresh statistics sample and a catalogued snapshot: reading them needs no worker either.
  await h.sql('insert into repo_stats_history (repo_id, snapshot_count, total_size, total_file_count) values (?, 1, 10, 1)', [ids.repo]);
  await h.sql(
    `insert into snapshots (repo_id, id, short_id, time, time_text, tree, paths, hostname, username)
     values (?, ?, '4bba301e', now(), '2026-12-03T00:00:00Z', ?, '["/etc"]', 'matrix', 'root')`,
    [ids.repo, `4bba301e${'0'.repeat(56)}`, '1'.repeat(64)],
  );
  // Browsers from this origin are allowed globally; the origin case comes from elsewhere.
  expect((await h.api.put('/settings/api_cors_allowed_origins', { value: ['https://allowed.example'] })).status).toBe(200);
  const past = new Date(Date.now() - 60_000);
  callers = {
    expired: await h.createCaller({ token: { expiresAt: past } }),
    revoked: await h.createCaller({ token: { revokedAt: past, revokedReason: 'matrix' } }),
    readOnly: await h.createCaller({ token: { readOnly: true } }),
    ipNotAllowed: await h.createCaller({ token: { allowedIps: ['10.0.0.0/8', '2001:db8::/32'] } }),
    originNotAllowed: await h.createCaller({ token: { allowedOrigins: ['https://allowed.example'] } }),
    repoScoped: await h.createCaller({ token: { repoScopeMode: 'selected', repoScopeIds: [ids.otherRepo] } }),
    hostScoped: await h.createCaller({ token: { hostScopeMode: 'selected', hostScopeIds: [ids.otherHost] } }),
    // The same limits on the user rather than the token.
    repoScopedUser: await h.createCaller({ user: { repoScopeMode: 'selected', repoScopeIds: [ids.otherRepo] } }),
    hostScopedUser: await h.createCaller({ user: { hostScopeMode: 'selected', hostScopeIds: [ids.otherHost] } }),
  };
  ids.apiToken = callers.readOnly?.tokenId ?? 0;
});

afterAll(async () => {
  await h?.stop();
});

/** The scope an operation declares. */
const scopeOf = (operation: ContractOperation) => (operation.security?.[0] as Record<string, Scope[]>).bearerAuth?.[0] as Scope;

function pathOf(operation: ContractOperation): string {
  const id = operation.path.startsWith('/repos/') || operation.path.startsWith('/stats/repos/') ? ids.repo
    : operation.path.startsWith('/hosts/') ? ids.host
    : operation.path.startsWith('/backup-jobs/') ? ids.job
    : operation.path.startsWith('/copy-jobs/') ? ids.copyJob
    : operation.path.startsWith('/ssh-keys/') ? ids.sshKey
    : operation.path.startsWith('/api-tokens/') ? ids.apiToken
    : 1;
  return operation.path
    .replace('{id}', String(id))
    .replace('{sid}', '4bba301e')
    .replace('{delivery_id}', '1')
    .replace('{key}', operation.path.startsWith('/settings') ? 'app_name' : 'weekly_report')
    .replace('{run_id}', '0b7e4c1e-5d0c-4c47-9f55-2f1f6a3d9e10');
}

/** A request the contract accepts, whose body names the fixtures wherever the scope check looks. */
function bodyOf(operation: ContractOperation): unknown {
  const schema = (operation.requestBody as { content?: Record<string, { schema?: object }> } | undefined)?.content?.['application/json']?.schema;
  if (!schema) return undefined;
  const body = mock(schema as never) as Record<string, unknown>;
  // The catalogued snapshot: finding it needs no worker, which this suite does not run.
  if ('snapshot_id' in body) body.snapshot_id = '4bba301e';
  for (const [kind, source] of Object.entries(operation['x-resource-scope'] ?? {})) {
    const [where, field = ''] = source.split('.');
    const id = kind === 'repo' ? ids.repo : kind === 'host' || kind === 'run_host' ? ids.host : ids.sshKey;
    // A field that lists ids (`repo_ids`) names the fixture alone.
    if (where === 'body') body[field] = Array.isArray(body[field]) ? [id] : id;
  }
  return body;
}

async function send(operation: ContractOperation, options: { token?: string | null; headers?: Record<string, string> } = {}): Promise<ApiResponse> {
  const response = await h.api.request(operation.method.toUpperCase(), pathOf(operation), { body: bodyOf(operation), ...options });
  // The matrix fails authentication on purpose hundreds of times; the per-address limit has its own tests.
  await h.sql("delete from api_rate_hits where subject like 'auth-failure:%'");
  return response;
}

const isWrite = (operation: ContractOperation) => !SCOPES[scopeOf(operation)].readOnly;
const DRY_RUN = { 'X-Dry-Run': '1' };

/** How an operation meets repository and host scope: by the resource it names, or by creating one. */
function touches(operation: ContractOperation, kind: 'repo' | 'host'): boolean {
  const declared = Object.keys(operation['x-resource-scope'] ?? {});
  if (operation['x-resource-create'] === kind || operation['x-resource-scope-all']) return true;
  // A repository's users are jobs (on hosts); a host's users are jobs and repositories. A copy
  // job writes to a host (sftp) or to the control plane, as the fixture's does.
  if (kind === 'repo') return ['repo', 'backup_job', 'copy_job', 'restore', 'host_users'].some((k) => declared.includes(k));
  return ['host', 'run_host', 'backup_job', 'copy_job', 'restore', 'ssh_key', 'repo_users'].some((k) => declared.includes(k));
}

describe('the contract declares resource scope', () => {
  test('on every operation whose path names a repository- or host-bound resource', () => {
    const unannotated = operations
      .filter((o) => SCOPED_PREFIXES.some((prefix) => o.path.startsWith(prefix)) && !o['x-resource-scope'])
      .map((o) => o.operationId)
      .sort();
    expect(unannotated).toEqual([]);
  });
});

describe.each([
  ['no token', () => ({ token: null }), 401, 'missing_token'],
  ['a malformed token', () => ({ token: 'rui_not-a-token' }), 401, 'invalid_token'],
  ['an unknown token', () => ({ token: randomToken() }), 401, 'invalid_token'],
  ['an expired token', () => ({ token: callers.expired?.token }), 401, 'token_expired'],
  ['a revoked token', () => ({ token: callers.revoked?.token }), 401, 'token_revoked'],
  ['a token used from an address it does not allow', () => ({ token: callers.ipNotAllowed?.token }), 403, 'ip_not_allowed'],
  ['a token used from an origin it does not allow', () => ({ token: callers.originNotAllowed?.token, headers: { Origin: 'https://elsewhere.example' } }), 403, 'origin_not_allowed'],
] as const)('every operation, with %s', (_name, options, status, code) => {
  test(`answers ${status} ${code}`, async () => {
    for (const operation of operations) {
      const response = await send(operation, options());
      expect({ op: operation.operationId, status: response.status, code: response.body?.error?.code }).toEqual({ op: operation.operationId, status, code });
      expectError(response, status, code);
    }
  });
});

describe('every operation, with a token lacking its scope', () => {
  test('answers 403 insufficient_scope naming the scope', async () => {
    for (const operation of operations) {
      const required = scopeOf(operation);
      const caller = await h.createCaller({ token: { scopes: Object.keys(SCOPES).filter((s) => s !== required) } });
      const response = await send(operation, { token: caller.token });
      expect({ op: operation.operationId, status: response.status, code: response.body?.error?.code, scope: response.body?.error?.required_scope })
        .toEqual({ op: operation.operationId, status: 403, code: 'insufficient_scope', scope: required });
    }
  });
});

describe('every write operation, with a read-only token', () => {
  test('answers 403 read_only_token', async () => {
    const writes = operations.filter(isWrite);
    expect(writes.length).toBeGreaterThan(30);
    for (const operation of writes) {
      const response = await send(operation, { token: callers.readOnly?.token });
      expect({ op: operation.operationId, status: response.status, code: response.body?.error?.code }).toEqual({ op: operation.operationId, status: 403, code: 'read_only_token' });
    }
  });
});

describe.each([
  ['repo', 'a token limited to other repositories', 'repoScoped'],
  ['repo', 'a user limited to other repositories', 'repoScopedUser'],
  ['host', 'a token limited to other hosts', 'hostScoped'],
  ['host', 'a user limited to other hosts', 'hostScopedUser'],
] as const)('every %s-bound operation, with %s', (kind, _name, callerName) => {
  test(`answers 403 ${kind}_not_in_scope (or ${kind}_create_not_in_scope), and nothing else does`, async () => {
    const caller = (): Caller => callers[callerName] as Caller;
    const bound = operations.filter((o) => touches(o, kind));
    expect(bound.length).toBeGreaterThan(kind === 'repo' ? 15 : 8);
    for (const operation of operations) {
      // Dry runs: the matrix must not delete its own fixtures.
      const response = await send(operation, { token: caller().token, headers: DRY_RUN });
      const code = response.body?.error?.code;
      if (touches(operation, kind)) {
        const expected = operation['x-resource-create'] === kind ? `${kind}_create_not_in_scope` : `${kind}_not_in_scope`;
        expect({ op: operation.operationId, status: response.status, code }).toEqual({ op: operation.operationId, status: 403, code: expected });
      } else {
        expect({ op: operation.operationId, code }).not.toEqual({ op: operation.operationId, code: expect.stringMatching(/_not_in_scope$/) });
      }
    }
  });
});

describe('every operation, with a token that may do everything', () => {
  test('passes every check above (the cases fail for their own reason, not for being unreachable)', async () => {
    for (const operation of operations) {
      const response = await send(operation, { headers: { ...DRY_RUN, Origin: 'https://allowed.example' }, token: callers.originNotAllowed?.token });
      // With no worker in this suite, a request that waits for a worker's answer says so (503 worker_unavailable): it got past every check.
      const refused = [401, 403, 429, 500].includes(response.status) || (response.status === 503 && response.body?.error?.code !== 'worker_unavailable');
      expect({ op: operation.operationId, refused }).toEqual({ op: operation.operationId, refused: false });
    }
  });
});
