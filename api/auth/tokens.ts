import { createHash, randomBytes } from 'node:crypto';

/** API tokens look like `rui_<8 hex>_<40 hex>`; only their sha256 and the 8-hex prefix are stored. */
const TOKEN_PATTERN = /^rui_([0-9a-f]{8})_([0-9a-f]{40})$/;

export interface NewToken {
  token: string;
  prefix: string;
  hash: string;
}

export function generateToken(): NewToken {
  const prefix = randomBytes(4).toString('hex');
  const token = `rui_${prefix}_${randomBytes(20).toString('hex')}`;
  return { token, prefix, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function isWellFormedToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}
