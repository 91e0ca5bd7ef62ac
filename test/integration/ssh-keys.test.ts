import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utils, type ParsedKey } from 'ssh2';
import { SshKey } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import type { ApiResponse } from '../support/api-client';
import { startHarness, type Harness } from '../support/harness';
import { stackEnv } from '../support/stack-env';
import { expectError, unique } from '../support/expectations';

/**
 * SSH keys through the API: generation, import of the formats ssh-keygen and node produce
 * (checked against ssh-keygen itself), write-only private keys, and the key test against the
 * shared loopback sshd.
 */
let h: Harness;
let dir: string;

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'bcp-ssh-keys-'));
});
afterAll(async () => {
  await h?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs ssh-keygen and returns its stdout. */
function sshKeygen(args: string[]): string {
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A key pair made by ssh-keygen: [private key text, public key line]. */
async function keygen(args: string[]): Promise<{ privateKey: string; publicKey: string; file: string }> {
  const file = join(dir, `key-${unique()}`);
  sshKeygen(['-q', ...args, '-C', 'made-by-ssh-keygen', '-f', file]);
  return { privateKey: await readFile(file, 'utf8'), publicKey: (await readFile(`${file}.pub`, 'utf8')).trim(), file };
}

/** What `ssh-keygen -lf` prints as the fingerprint of a public key line. */
async function keygenFingerprint(publicKey: string): Promise<string> {
  const file = join(dir, `pub-${unique()}.pub`);
  await writeFile(file, `${publicKey}\n`);
  return sshKeygen(['-lf', file]).split(/\s+/)[1] as string;
}

/** `type base64` of a public key line (the comment is not part of the key). */
const keyOf = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');

/** The part of a PEM / OpenSSH private key that must never leave the server. */
const secretBody = (privateKey: string) => privateKey.split('\n').filter((l) => l && !l.startsWith('-----')).slice(1, 3).join('');

async function keyRows(): Promise<number> {
  return h.services.orm.em.fork().count(SshKey, {});
}

async function storedRow(id: number): Promise<Record<string, unknown> & { private_key_secret: string }> {
  const rows = await h.sql<Record<string, unknown> & { private_key_secret: string }>(
    'select * from ssh_keys where id = ?',
    [id],
  );
  return rows[0] as Record<string, unknown> & { private_key_secret: string };
}

function importKey(privateKey: string, extra: Record<string, unknown> = {}) {
  return h.api.post('/ssh-keys', { name: `imported-${unique()}`, host: 'files.example.internal', user: 'backup', private_key: privateKey, ...extra });
}

/** Checks an imported key against the public key ssh-keygen knows for it. */
async function expectImported(res: ApiResponse, expectedPublicKey: string, keyType: string): Promise<void> {
  expect(res.status).toBe(201);
  expect(keyOf(res.body.data.public_key)).toBe(keyOf(expectedPublicKey));
  expect(res.body.data.key_type).toBe(keyType);
  expect(res.body.data.fingerprint).toBe(await keygenFingerprint(expectedPublicKey));
}

describe('generated keys', () => {
  test('without private_key, an ed25519 pair is generated; the fingerprint is what ssh-keygen prints', async () => {
    const res = await h.api.post('/ssh-keys', { name: 'generated', host: 'files.example.internal' });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      name: 'generated',
      host: 'files.example.internal',
      user: 'root',
      port: 22,
      key_type: 'ssh-ed25519',
      description: null,
      public_key: expect.stringMatching(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[0-9A-Za-z+/=]+( \S.*)?$/),
    });
    expect(res.body.data.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(res.body.data.fingerprint).toBe(await keygenFingerprint(res.body.data.public_key));
    expect(res.text).not.toMatch(/PRIVATE KEY|private_key/);

    const again = await h.api.post('/ssh-keys', { name: 'generated 2', host: 'files.example.internal' });
    expect(keyOf(again.body.data.public_key)).not.toBe(keyOf(res.body.data.public_key));
  });

  test('the 201 carries a Location header naming the new key', async () => {
    const res = await h.api.post('/ssh-keys', { name: `generated-${unique()}`, host: 'files.example.internal' });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/ssh-keys/${res.body.data.id}`);
  });

  test('list, get and delete', async () => {
    const created = (await h.api.post('/ssh-keys', { name: `listed-${unique()}`, host: 'h.example', port: 2222, user: 'u', description: 'd' })).body.data;
    expect(created).toMatchObject({ port: 2222, user: 'u', description: 'd' });
    const total = await keyRows();
    const list = await h.api.get('/ssh-keys?per_page=200');
    expect(list.status).toBe(200);
    expect(list.body.meta).toEqual({ page: 1, per_page: 200, total, total_pages: 1 });
    const ids = list.body.data.map((k: { id: number }) => k.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
    expect(list.body.data.find((k: { id: number }) => k.id === created.id)).toEqual(created);

    const got = await h.api.get(`/ssh-keys/${created.id}`);
    expect(got.body.data).toEqual(created);

    expect((await h.api.delete(`/ssh-keys/${created.id}`)).status).toBe(204);
    expectError(await h.api.get(`/ssh-keys/${created.id}`), 404, 'not_found');
    expectError(await h.api.delete(`/ssh-keys/${created.id}`), 404, 'not_found');
  });
});

describe('imported keys: the public key is the one ssh-keygen derives', () => {
  test('OpenSSH ed25519 (ssh-keygen -t ed25519)', async () => {
    const key = await keygen(['-t', 'ed25519', '-N', '']);
    await expectImported(await importKey(key.privateKey), key.publicKey, 'ssh-ed25519');
  });

  test('RSA PEM (ssh-keygen -t rsa -b 2048 -m PEM)', async () => {
    const key = await keygen(['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '']);
    expect(key.privateKey).toContain('BEGIN RSA PRIVATE KEY');
    await expectImported(await importKey(key.privateKey), key.publicKey, 'ssh-rsa');
  });

  test('encrypted OpenSSH key, with its passphrase', async () => {
    const passphrase = `pass ${unique()}`;
    const key = await keygen(['-t', 'ed25519', '-N', passphrase]);
    const res = await importKey(key.privateKey, { passphrase });
    await expectImported(res, key.publicKey, 'ssh-ed25519');
    expect(res.text).not.toContain(passphrase);
  });

  test('ECDSA (ssh-keygen -t ecdsa)', async () => {
    const key = await keygen(['-t', 'ecdsa', '-N', '']);
    await expectImported(await importKey(key.privateKey), key.publicKey, 'ecdsa-sha2-nistp256');
  });

  test('PKCS#8 RSA made by node crypto', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(pem).toContain('BEGIN PRIVATE KEY');
    const file = join(dir, `pkcs8-rsa-${unique()}.pem`);
    await writeFile(file, pem, { mode: 0o600 });
    const expected = sshKeygen(['-y', '-f', file]).trim();
    await expectImported(await importKey(pem), expected, 'ssh-rsa');
  });

  test('PKCS#8 ed25519 made by node crypto', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    // This ssh-keygen cannot read ed25519 PEM; the public key blob is built from the raw key instead.
    const raw = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x as string, 'base64url');
    const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const expected = `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')}`;
    await expectImported(await importKey(pem), expected, 'ssh-ed25519');
  });

  test('encrypted PKCS#8 with its passphrase', async () => {
    const passphrase = `pkcs8 ${unique()}`;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
    expect(pem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    const file = join(dir, `pkcs8-enc-${unique()}.pem`);
    await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    const res = await importKey(pem, { passphrase });
    await expectImported(res, sshKeygen(['-y', '-f', file]).trim(), 'ssh-rsa');
    expect(res.text).not.toContain(passphrase);
  });
});

describe('keys that cannot be imported', () => {
  test('an encrypted key without passphrase is 422 passphrase_required', async () => {
    const before = await keyRows();
    const openssh = await keygen(['-t', 'ed25519', '-N', 'secret words']);
    expectError(await importKey(openssh.privateKey), 422, 'passphrase_required');
    const pem = await keygen(['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', 'secret words']);
    expectError(await importKey(pem.privateKey), 422, 'passphrase_required');
    const pkcs8 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret words' }).toString();
    expectError(await importKey(pkcs8), 422, 'passphrase_required');
    expect(await keyRows()).toBe(before);
  });

  test('a wrong passphrase is 422 wrong_passphrase', async () => {
    const before = await keyRows();
    const openssh = await keygen(['-t', 'ed25519', '-N', 'right words']);
    const res = await importKey(openssh.privateKey, { passphrase: 'wrong words' });
    expectError(res, 422, 'wrong_passphrase');
    expect(res.text).not.toContain('wrong words');
    const pem = await keygen(['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', 'right words']);
    expectError(await importKey(pem.privateKey, { passphrase: 'wrong words' }), 422, 'wrong_passphrase');
    const pkcs8 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'right words' }).toString();
    expectError(await importKey(pkcs8, { passphrase: 'wrong words' }), 422, 'wrong_passphrase');
    expect(await keyRows()).toBe(before);
  });

  test('garbage is 422 invalid_private_key', async () => {
    const before = await keyRows();
    const res = await importKey('this is not a key at all');
    expectError(res, 422, 'invalid_private_key');
    expectError(await importKey('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnotbase64!!\n-----END OPENSSH PRIVATE KEY-----\n'), 422, 'invalid_private_key');
    expectError(await importKey('-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n'), 422, 'invalid_private_key');
    expect(await keyRows()).toBe(before);
  });

  test('an RSA key under 2048 bits is refused as weak_key', async () => {
    const before = await keyRows();
    const key = await keygen(['-t', 'rsa', '-b', '1024', '-m', 'PEM', '-N', '']);
    expectError(await importKey(key.privateKey), 422, 'weak_key');
    expect(await keyRows()).toBe(before);
  });

  test('a passphrase without a private key to import is 422', async () => {
    const before = await keyRows();
    const res = await h.api.post('/ssh-keys', { name: `pp-${unique()}`, host: 'h.example', passphrase: 'for nothing' });
    expectError(res, 422, 'validation_error');
    expect(await keyRows()).toBe(before);
  });

  test('a public key given as private_key is 422', async () => {
    const before = await keyRows();
    const key = await keygen(['-t', 'ed25519', '-N', '']);
    const res = await importKey(key.publicKey);
    expectError(res, 422, 'invalid_private_key');
    expect(await keyRows()).toBe(before);
  });
});

describe('the private key is write-only', () => {
  test('neither the private key nor its passphrase appear in any response', async () => {
    const passphrase = `never shown ${unique()}`;
    const key = await keygen(['-t', 'ed25519', '-N', passphrase]);
    const created = await importKey(key.privateKey, { passphrase });
    expect(created.status).toBe(201);
    const body = secretBody(key.privateKey);
    expect(body.length).toBeGreaterThan(40);
    for (const res of [created, await h.api.get(`/ssh-keys/${created.body.data.id}`), await h.api.get('/ssh-keys?per_page=200')]) {
      expect(res.text).not.toContain(body);
      expect(res.text).not.toContain(passphrase);
      expect(res.text).not.toMatch(/PRIVATE KEY|private_key|passphrase/);
    }
    const stored = await storedRow(created.body.data.id);
    expect(stored.private_key_secret).not.toContain(body);
    expect(stored.private_key_secret).not.toMatch(/PRIVATE KEY/);
  });

  test('the passphrase of an imported key is not kept', async () => {
    // The contract: "The key is stored decrypted-then-re-encrypted at rest; the passphrase is not kept."
    const passphrase = `not kept ${unique()}`;
    const key = await keygen(['-t', 'ed25519', '-N', passphrase]);
    const created = await importKey(key.privateKey, { passphrase });
    expect(created.status).toBe(201);
    const stored = await storedRow(created.body.data.id);
    expect(JSON.stringify(stored)).not.toContain(passphrase);
    expect(Object.keys(stored).some((column) => column.includes('passphrase'))).toBe(false);
    // What is kept (sealed) is the decrypted key: usable without any passphrase.
    const opened = h.services.secrets.open(stored.private_key_secret, SecretPurpose.sshPrivateKey);
    const parsed = utils.parseKey(opened);
    expect(parsed).not.toBeInstanceOf(Error);
    expect(keyOf(`${(parsed as ParsedKey).type} ${(parsed as ParsedKey).getPublicSSH().toString('base64')}`)).toBe(keyOf(key.publicKey));
  });
});

describe('deletion', () => {
  test('a key used by a host cannot be deleted (409 ssh_key_in_use) until the host lets go of it', async () => {
    const key = (await h.api.post('/ssh-keys', { name: `in-use-${unique()}`, host: 'h.example' })).body.data;
    const host = await h.api.post('/hosts', { name: `host-${unique()}`, hostname: 'h.example', ssh_key_id: key.id });
    expect(host.status).toBe(201);
    expectError(await h.api.delete(`/ssh-keys/${key.id}`), 409, 'ssh_key_in_use');
    expect((await h.api.get(`/ssh-keys/${key.id}`)).status).toBe(200);

    expect((await h.api.patch(`/hosts/${host.body.data.id}`, { ssh_key_id: null })).status).toBe(200);
    expect((await h.api.delete(`/ssh-keys/${key.id}`)).status).toBe(204);
  });
});

describe('POST /ssh-keys/{id}/test against the test sshd', () => {
  const sshd = () => stackEnv().sshd;
  const forSshd = (extra: Record<string, unknown> = {}) =>
    h.api.post('/ssh-keys', { name: `sshd-${unique()}`, host: sshd().host, port: sshd().port, user: sshd().user, ...extra });

  test('an authorised key logs in: success, host key unpinned; verified once a host there is pinned', async () => {
    const key = (await forSshd()).body.data;
    await appendFile(sshd().authorizedKeysFile, `${key.public_key}\n`);

    const first = await h.api.post(`/ssh-keys/${key.id}/test`);
    expect(first.status).toBe(200);
    expect(first.body.data).toMatchObject({
      success: true,
      error: null,
      host_key: { fingerprint: sshd().hostKeyFingerprint, type: expect.any(String), status: 'unpinned' },
    });
    expect(first.body.data.latency_ms).toBeGreaterThanOrEqual(0);

    // A host at that address, tested once, pins the key; the key test then verifies against it.
    const host = await h.api.post('/hosts', {
      name: `pinned-${unique()}`,
      hostname: sshd().host,
      port: sshd().port,
      user: sshd().user,
      ssh_key_id: key.id,
      restic_path: stackEnv().resticBinary,
    });
    const hostTest = await h.api.post(`/hosts/${host.body.data.id}/test`);
    expect(hostTest.body.data.host_key.status).toBe('pinned');

    const second = await h.api.post(`/ssh-keys/${key.id}/test`);
    expect(second.body.data).toMatchObject({ success: true, error: null, host_key: { fingerprint: sshd().hostKeyFingerprint, status: 'verified' } });
  });

  test('an imported encrypted key works with the passphrase it was imported with', async () => {
    const passphrase = `works ${unique()}`;
    const generated = await keygen(['-t', 'ed25519', '-N', passphrase]);
    const key = (await forSshd({ private_key: generated.privateKey, passphrase })).body.data;
    await appendFile(sshd().authorizedKeysFile, `${generated.publicKey}\n`);
    const res = await h.api.post(`/ssh-keys/${key.id}/test`);
    expect(res.body.data).toMatchObject({ success: true, error: null });
  });

  test('an imported PKCS#8 key logs in', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const key = (await forSshd({ private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() })).body.data;
    await appendFile(sshd().authorizedKeysFile, `${key.public_key}\n`);
    const res = await h.api.post(`/ssh-keys/${key.id}/test`);
    expect(res.body.data).toMatchObject({ success: true, error: null });
  });

  test('a key that is not authorised: success false, auth_failed', async () => {
    const key = (await forSshd()).body.data;
    const res = await h.api.post(`/ssh-keys/${key.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ success: false, error: { code: 'auth_failed', message: expect.any(String) } });
  });

  test('testing an unknown key is 404', async () => {
    expectError(await h.api.post('/ssh-keys/999999/test'), 404, 'not_found');
  });
});
