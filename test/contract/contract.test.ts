import type OpenAPIBackend from 'openapi-backend';
import type { Operation } from 'openapi-backend';
import { ALL_SCOPES } from '../../api/auth/scopes';
import { contractBackend, readContract } from '../../api/contract';
import { handlers } from '../../api/handlers';
import { RESOURCE_KINDS } from '../../api/middleware/resource-scope';

type ContractOperation = Operation;

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

  test('binds a handler to every operation, and only to operations of the contract', () => {
    expect(operations.filter((o) => !handlers[o.operationId as keyof typeof handlers]).map((o) => o.operationId)).toEqual([]);
    for (const operationId of Object.keys(handlers)) expect(ids()).toContain(operationId);
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
});
