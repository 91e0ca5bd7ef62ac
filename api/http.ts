/** Methods that change something: the ones idempotency keys and dry runs apply to. */
const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const isMutation = (method: string) => MUTATIONS.has(method);
