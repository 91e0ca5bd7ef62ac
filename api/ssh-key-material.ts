import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { utils, type ParsedKey } from 'ssh2';
import { fingerprintOf } from '../common/ssh-fingerprint';
import { ApiError } from './errors';

export interface KeyMaterial {
  /** The private key to store (sealed), unencrypted: as given, or converted to a format ssh2 reads. */
  privateKey: string;
  publicKey: string;
  fingerprint: string;
  keyType: string;
}

function keyError(code: string, message: string): ApiError {
  return new ApiError(422, code, message, { field: ['invalid_private_key', 'weak_key'].includes(code) ? 'private_key' : 'passphrase' });
}

/**
 * A new ed25519 key pair, in OpenSSH format. Node generates it: ssh2's own generator writes
 * about one key in 300 that its parser then rejects as malformed. The halves come out encoded
 * (DER) from the generation itself: exporting the generated KeyObject afterwards can deadlock
 * Node when garbage collection frees the generation job meanwhile (both take the key's mutex).
 */
export function generateKey(comment: string): KeyMaterial {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    publicKeyEncoding: { type: 'spki', format: 'der' },
  });
  return describe(openSshEd25519(rawEd25519(privateKey), rawEd25519(publicKey), comment), comment);
}

/** An ed25519 key's 32 raw bytes: the end of its PKCS#8 (seed) or SPKI (public key) DER. */
function rawEd25519(der: Buffer): Buffer {
  return der.subarray(der.length - 32);
}

/**
 * Reads an OpenSSH or PEM (PKCS#1, SEC1, PKCS#8, encrypted or not) private key. An encrypted
 * key is decrypted once, here: its passphrase is not kept (the key is sealed at rest instead).
 * PKCS#8 keys, which ssh2 cannot read, are converted to a format it can.
 */
export function importKey(privateKey: string, passphrase: string | null, comment: string): KeyMaterial {
  const text = privateKey.trim() + '\n';
  if (/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(text)) return describe(convertPkcs8(text, passphrase, comment), comment);
  if (!passphrase) return describe(text, comment);
  // ssh2 exposes the decrypted key as PEM (PKCS#1, SEC1, or PKCS#8 for ed25519).
  const decrypted = (parse(text, passphrase) as ParsedKey & { getPrivatePEM(): string }).getPrivatePEM();
  return describe(/BEGIN PRIVATE KEY/.test(decrypted) ? convertPkcs8(decrypted, null, comment) : decrypted, comment);
}

const MIN_RSA_BITS = 2048;

function describe(privateKey: string, comment: string): KeyMaterial {
  const parsed = parse(privateKey, null);
  if (parsed.type === 'ssh-rsa') {
    const bits = createPublicKey(parsed.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw keyError('weak_key', `RSA keys need at least ${MIN_RSA_BITS} bits (this one has ${bits})`);
  }
  const blob = parsed.getPublicSSH();
  return {
    privateKey,
    publicKey: `${parsed.type} ${blob.toString('base64')} ${comment}`.trim(),
    fingerprint: fingerprintOf(blob),
    keyType: parsed.type,
  };
}

function parse(privateKey: string, passphrase: string | null): ParsedKey {
  const result = utils.parseKey(privateKey, passphrase ?? undefined);
  if (result instanceof Error) {
    if (/no passphrase given/i.test(result.message)) throw keyError('passphrase_required', 'the private key is encrypted: give its passphrase');
    if (/passphrase|decrypt|integrity/i.test(result.message)) throw keyError('wrong_passphrase', 'the passphrase does not decrypt the private key');
    throw keyError('invalid_private_key', `the private key cannot be read: ${result.message}`);
  }
  const key = Array.isArray(result) ? (result[0] as ParsedKey | undefined) : result;
  if (!key?.isPrivateKey()) throw keyError('invalid_private_key', 'this is not a private key');
  return key;
}

function convertPkcs8(pem: string, passphrase: string | null, comment: string): string {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', passphrase: passphrase ?? undefined });
  } catch (error) {
    const message = (error as Error).message;
    const encrypted = pem.includes('BEGIN ENCRYPTED PRIVATE KEY');
    if (encrypted && !passphrase) throw keyError('passphrase_required', 'the private key is encrypted: give its passphrase');
    if (encrypted) throw keyError('wrong_passphrase', 'the passphrase does not decrypt the private key');
    throw keyError('invalid_private_key', `the private key cannot be read: ${message}`);
  }
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return key.export({ type: 'pkcs1', format: 'pem' }).toString();
    case 'ec':
      return key.export({ type: 'sec1', format: 'pem' }).toString();
    case 'ed25519':
      return openSshEd25519(
        rawEd25519(key.export({ type: 'pkcs8', format: 'der' })),
        rawEd25519(createPublicKey(key).export({ type: 'spki', format: 'der' })),
        comment,
      );
    default:
      throw keyError('invalid_private_key', `unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

/** Writes an ed25519 key (its seed and public key) in the unencrypted `openssh-key-v1` container. */
function openSshEd25519(seed: Buffer, pub: Buffer, comment: string): string {
  const string = (b: Buffer | string) => {
    const data = typeof b === 'string' ? Buffer.from(b) : b;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    return Buffer.concat([length, data]);
  };
  const uint32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const publicBlob = Buffer.concat([string('ssh-ed25519'), string(pub)]);
  const check = randomBytes(4).readUInt32BE(0);
  let secret = Buffer.concat([uint32(check), uint32(check), string('ssh-ed25519'), string(pub), string(Buffer.concat([seed, pub])), string(comment)]);
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  secret = Buffer.concat([secret, padding]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'), string('none'), string('none'), string(''), uint32(1), string(publicBlob), string(secret),
  ]).toString('base64');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.match(/.{1,70}/g)?.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
