import { randomBytes, scrypt } from 'node:crypto';

// OWASP's scrypt floor (N=2^15, r=8, p=1); the parameters are stored with each hash so they can be raised later.
const COST = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 64;

/** `scrypt$N$r$p$<salt b64>$<key b64>`: a salted, slow hash; the password itself is never stored. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await new Promise<Buffer>((resolve, reject) => {
    // scrypt needs 128 * N * r bytes, exactly node's default cap (32 MiB): leave it room.
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { ...COST, maxmem: 256 * COST.N * COST.r }, (error, derived) => (error ? reject(error) : resolve(derived)));
  });
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64'), key.toString('base64')].join('$');
}

