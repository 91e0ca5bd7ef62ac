import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTemporalConfig } from '../../common/config';
import { temporalConnectionOptions } from '../../common/temporal';

/** How the environment names an external Temporal cluster or Temporal Cloud, as the client sees it. */
const dir = mkdtempSync(join(tmpdir(), 'bcp-temporal-tls-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

test('a local dev server: no TLS, no key', () => {
  expect(temporalConnectionOptions(loadTemporalConfig({}))).toEqual({ address: '127.0.0.1:7233', tls: undefined, apiKey: undefined });
});

test('Temporal Cloud with an API key: TLS with the system CAs, and the key', () => {
  const options = temporalConnectionOptions(loadTemporalConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'k-123' }));
  expect(options).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'k-123' });
});

test('a self-hosted cluster with mTLS: the CA, the client pair and the server name are read from their files', () => {
  const env = {
    TEMPORAL_ADDRESS: 'temporal.internal:7233',
    TEMPORAL_TLS_CA_FILE: file('ca.pem', 'CA PEM'),
    TEMPORAL_TLS_CERT_FILE: file('client.pem', 'CERT PEM'),
    TEMPORAL_TLS_KEY_FILE: file('client.key', 'KEY PEM'),
    TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
  };
  const { tls } = temporalConnectionOptions(loadTemporalConfig(env)) as { tls: Record<string, unknown> };
  expect(tls).toEqual({
    serverRootCACertificate: Buffer.from('CA PEM'),
    clientCertPair: { crt: Buffer.from('CERT PEM'), key: Buffer.from('KEY PEM') },
    serverNameOverride: 'frontend.temporal.internal',
  });
});

test('a client certificate without its key is refused at start', () => {
  expect(() => loadTemporalConfig({ TEMPORAL_TLS_CERT_FILE: file('lonely.pem', 'x') })).toThrow(/TEMPORAL_TLS_KEY_FILE/);
});
