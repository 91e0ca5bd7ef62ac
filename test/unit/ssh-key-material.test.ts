import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, importKey } from '../../api/ssh-key-material';

describe('generateKey', () => {
  test('every generated key reads back (3000 in a row), with the same public key and fingerprint', () => {
    for (let i = 0; i < 3000; i++) {
      const key = generateKey('root@backup');
      const again = importKey(key.privateKey, null, 'root@backup');
      expect(again).toEqual(key);
      expect(key.keyType).toBe('ssh-ed25519');
    }
  });

  test('OpenSSH reads the private key and derives the same public key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bcp-key-'));
    try {
      for (let i = 0; i < 20; i++) {
        const key = generateKey('ops@example');
        const file = join(dir, `id_${i}`);
        writeFileSync(file, key.privateKey, { mode: 0o600 });
        const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
        expect(derived.split(' ').slice(0, 2)).toEqual(key.publicKey.split(' ').slice(0, 2));
        const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' }).split(' ')[1];
        expect(fingerprint).toBe(key.fingerprint);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
