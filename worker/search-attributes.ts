import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { log } from '../common/log';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/search-attributes';

/** gRPC status codes of a server that keeps its operator API to itself (Temporal Cloud with an API key). */
const OPERATOR_API_REFUSED = new Set([7 /* PERMISSION_DENIED */, 12 /* UNIMPLEMENTED */]);

const INDEXED_TYPE = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  TEXT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
} as Record<string, temporal.api.enums.v1.IndexedValueType>;

/**
 * Registers the custom search attributes in the namespace, once; existing ones are left alone.
 * Where the server refuses its operator API, they must have been created beforehand (README).
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  try {
    await registerMissing(connection, namespace);
  } catch (error) {
    if (!isGrpcServiceError(error) || !OPERATOR_API_REFUSED.has(error.code)) throw error;
    const names = SEARCH_ATTRIBUTE_KEYS.map((key) => `${key.name} (${key.type})`).join(', ');
    log.warn(`the server does not let this worker check its search attributes; the namespace must have ${names}`);
  }
}

async function registerMissing(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((key) => !(key.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  const searchAttributes = Object.fromEntries(missing.map((key) => [key.name, INDEXED_TYPE[key.type]]));
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  } catch (error) {
    // Another worker may have registered them first.
    const again = await connection.operatorService.listSearchAttributes({ namespace });
    if (missing.some((key) => !(key.name in (again.customAttributes ?? {})))) throw error;
  }
}
