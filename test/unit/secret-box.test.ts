import { randomBytes } from 'node:crypto';
import { SecretBox, SecretPurpose } from '../../db/secret-box';

describe('SecretBox (AES-256-GCM)', () => {
  const box = new SecretBox(randomBytes(32));

  test('round-trips, and never stores the plaintext', () => {
    const sealed = box.seal('hunter2 ünïcode', SecretPurpose.repoPassword);
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('hunter2');
    expect(box.open(sealed, SecretPurpose.repoPassword)).toBe('hunter2 ünïcode');
  });

  test('uses a fresh nonce each time', () => {
    expect(box.seal('same', 'p')).not.toBe(box.seal('same', 'p'));
  });

  test('refuses another purpose, another key and tampering', () => {
    const sealed = box.seal('secret', SecretPurpose.repoPassword);
    expect(() => box.open(sealed, SecretPurpose.sudoPassword)).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, SecretPurpose.repoPassword)).toThrow();
    const parts = sealed.split('.');
    const ciphertext = Buffer.from(parts[2] as string, 'base64url');
    ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
    parts[2] = ciphertext.toString('base64url');
    expect(() => box.open(parts.join('.'), SecretPurpose.repoPassword)).toThrow();
    expect(() => box.open('plain text', SecretPurpose.repoPassword)).toThrow('not a sealed secret');
  });

  test('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow();
  });
});
