import type OpenAPIBackend from 'openapi-backend';
import type { Operation } from 'openapi-backend';
import { mock } from 'mock-json-schema';
import { ALL_SCOPES } from '../../api/auth/scopes';
import { contractBackend, readContract } from '../../api/contract';
import { handlers } from '../../api/handlers';
import { RESOURCE_KINDS } from '../../api/middleware/resource-scope';
import { startHarness, type Harness } from '../support/harness';

/**
 * Operations of the contract that later work implements; each answers 501 not_implemented.
 * This list may only shrink: implementing an operation means removing it here.
 */
const NOT_IMPLEMENTED = [
  'listSchedulerTasks', 'listCronLog', 'runSchedulerTask',
  'getStatsSummary', 'getRepoRuntime',
  'listActivityLogs', 'listCronLogs',
  'getJobsSummary', 'listRecentJobs', 'getWorkerStatus', 'processJobs', 'recoverJobs',
  'listUsers', 'createUser', 'getUser', 'updateUser', 'deleteUser',
].sort();

type ContractOperation = Operation & { 'x-implemented'?: boolean };

describe('the contract', () => {
  let contract: OpenAPIBackend;
  let operations: ContractOperation[];

  beforeAll(async () => {
    contract = await contractBackend(readContract());
    operations = contract.getOperations() as ContractOperation[];
  });

  test('is a valid OpenAPI document whose every response schema compiles', () => {
    expect(() => contract.validateDefinition()).not.toThrow();
    for (const operation of operations) {
      for (const status of Object.keys(operation.responses ?? {})) {
        expect(() => contract.validateResponse({}, operation, Number(status))).not.toThrow();
      }
    }
  });

  test('gives every operation a unique operationId, one tag and one scope of the catalogue (or none, when public)', () => {
    const ids = operations.map((o) => o.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const operation of operations) {
      expect(operation.tags).toHaveLength(1);
      const security = operation.security ?? [];
      if (operation.tags?.[0] === 'System') {
        expect(security).toEqual([]);
        continue;
      }
      expect(security).toHaveLength(1);
      const scopes = (security[0] as Record<string, string[]>).bearerAuth;
      expect(scopes).toHaveLength(1);
      expect(ALL_SCOPES).toContain(scopes?.[0]);
    }
    expect(ALL_SCOPES).toHaveLength(34);
  });

  test('binds a handler to every implemented operation, and only to operations of the contract', () => {
    const withoutHandler = operations.filter((o) => !handlers[o.operationId as keyof typeof handlers]).map((o) => o.operationId).sort();
    expect(withoutHandler).toEqual(NOT_IMPLEMENTED);
    for (const operationId of Object.keys(handlers)) expect(ids()).toContain(operationId);
    for (const operation of operations) {
      const pending = NOT_IMPLEMENTED.includes(operation.operationId ?? '');
      expect({ op: operation.operationId, flag: operation['x-implemented'] !== false }).toEqual({ op: operation.operationId, flag: !pending });
      expect({ op: operation.operationId, declares501: '501' in (operation.responses ?? {}) }).toEqual({ op: operation.operationId, declares501: pending });
    }
  });

  test('names, in x-resource-scope, only known kinds and parameters or body fields the operation has', () => {
    for (const operation of operations as (ContractOperation & { 'x-resource-scope'?: Record<string, string> })[]) {
      for (const [kind, source] of Object.entries(operation['x-resource-scope'] ?? {})) {
        const [where, name] = source.split('.');
        const body = (operation.requestBody as { content?: Record<string, { schema?: { properties?: object } }> } | undefined)?.content?.['application/json']?.schema;
        const known = where === 'path'
          ? (operation.parameters ?? []).some((p) => 'in' in p && p.in === 'path' && p.name === name)
          : where === 'body' && Object.keys(body?.properties ?? {}).includes(name ?? '');
        expect({ op: operation.operationId, kind, source, kindKnown: (RESOURCE_KINDS as readonly string[]).includes(kind), known })
          .toEqual({ op: operation.operationId, kind, source, kindKnown: true, known: true });
      }
    }
  });

  function ids() {
    return operations.map((o) => o.operationId);
  }

  describe('through the running API', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ worker: false });
    });
    afterAll(async () => {
      await h?.stop();
    });

    test('every operation not implemented yet answers 501 not_implemented to a valid request', async () => {
      for (const operationId of NOT_IMPLEMENTED) {
        const operation = operations.find((o) => o.operationId === operationId) as ContractOperation;
        const path = operation.path
          .replace(/\{(id|delivery_id)\}/g, '1')
          .replace('{sid}', '4bba301e')
          .replace('{key}', 'weekly_report')
          .replace('{run_id}', '0b7e4c1e-5d0c-4c47-9f55-2f1f6a3d9e10');
        const schema = (operation.requestBody as { content?: Record<string, { schema?: object }> } | undefined)?.content?.['application/json']?.schema;
        const response = await h.api.request(operation.method.toUpperCase(), path, { body: schema ? mock(schema as never) : undefined });
        expect({ operationId, status: response.status, code: response.body?.error?.code }).toEqual({ operationId, status: 501, code: 'not_implemented' });
      }
    });
  });
});
