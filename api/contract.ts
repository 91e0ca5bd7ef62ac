import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import addFormats from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats';
import OpenAPIBackend, { type Document } from 'openapi-backend';
import { parse } from 'yaml';
import type { Scope } from './auth/scopes';

export const CONTRACT_FILE = resolve(__dirname, '..', 'openapi.yaml');
export const API_ROOT = '/api/v1';

/** The contract, parsed from openapi.yaml. */
export function readContract(file = CONTRACT_FILE): Document {
  return parse(readFileSync(file, 'utf8')) as Document;
}

const EARLIEST_TIME = Date.parse('0001-01-01T00:00:00Z');

function storableTime(text: string): boolean {
  const time = Date.parse(text);
  return Number.isFinite(time) && time >= EARLIEST_TIME;
}

/** An openapi-backend instance over the contract: routes, validates and coerces requests. */
export async function contractBackend(document: Document = readContract()): Promise<OpenAPIBackend> {
  const backend = new OpenAPIBackend({
    definition: structuredClone(document),
    apiRoot: API_ROOT,
    validate: true,
    // Validators are compiled per operation on first use rather than all at start (seconds saved).
    quick: true,
    coerceTypes: true,
    // Defaults declared in the contract are applied to bodies and query strings: one source of truth.
    ajvOpts: { useDefaults: true, allErrors: true },
    customizeAjv: (ajv) => {
      addFormats(ajv);
      // RFC 3339 admits times no database stores (a leap second, year 0): those are invalid here.
      const dateTime = fullFormats['date-time'] as { validate: (text: string) => boolean };
      ajv.addFormat('date-time', { type: 'string', validate: (text: string) => dateTime.validate(text) && storableTime(text) });
      return ajv;
    },
  });
  await backend.init();
  // The document never changes after init, but openapi-backend rebuilds this list on every
  // match and validation; building it once takes a millisecond off each request.
  const operations = backend.router.getOperations();
  backend.router.getOperations = () => operations;
  return backend;
}

/** The scopes an operation requires (its bearerAuth requirement); null for a public operation. */
export function requiredScopes(operation: { security?: Array<Record<string, string[]>> }, document: Document): Scope[] | null {
  const security = operation.security ?? document.security ?? [];
  if (security.length === 0) return null;
  return security.flatMap((requirement) => (requirement.bearerAuth ?? []) as Scope[]);
}
