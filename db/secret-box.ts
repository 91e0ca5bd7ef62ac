import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * Seals secrets (repository passwords, private keys, sudo passwords) with AES-256-GCM.
 * The purpose string is bound as associated data, so a sealed value copied into
 * another column does not open there.
 */
export class SecretBox {
  private static readonly VERSION = 'v1';

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key');
  }

  seal(plaintext: string, purpose: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const parts = [iv, ciphertext, cipher.getAuthTag()].map((b) => b.toString('base64url'));
    return [SecretBox.VERSION, ...parts].join('.');
  }

  /**
   * A keyed digest (HMAC-SHA256 under a key of its own, derived for `purpose`): what to store to
   * recognise a value that may hold a secret (a request body with a password) without making it
   * guessable offline by whoever reads the database.
   */
  digest(value: string, purpose: string): string {
    const key = createHmac('sha256', this.key).update(`digest:${purpose}`).digest();
    return createHmac('sha256', key).update(value).digest('hex');
  }

  open(sealed: string, purpose: string): string {
    const [version, iv, ciphertext, tag] = sealed.split('.');
    if (version !== SecretBox.VERSION || !iv || ciphertext === undefined || !tag) {
      throw new Error('not a sealed secret');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(purpose, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }
}

/** Purposes name the column a secret belongs to. */
export const SecretPurpose = {
  repoPassword: 'repos.password',
  sshPrivateKey: 'ssh_keys.private_key',
  sudoPassword: 'hosts.sudo_password',
  copyDestPassword: 'copy_jobs.dest_password',
  rcloneConfig: 'copy_jobs.rclone_config',
  webhookSecret: 'webhooks.secret',
  setting: 'settings.value',
} as const;
