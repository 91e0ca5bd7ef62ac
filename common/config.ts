import { readFileSync } from 'node:fs';
import { DEFAULT_TASK_QUEUE } from './schedule-ids';

/** Settings shared by the API and the worker, read once from the environment. */
export interface AppConfig {
  databaseUrl: string;
  temporal: TemporalConfig;
  resticBinary: string;
  secretKey: Buffer;
  api: { host: string; port: number };
}

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Base URL of the Temporal UI, used to link runs to their workflow; null when unknown. */
  uiUrl: string | null;
  /** Null: plain connection (a local dev server). */
  tls: TemporalTls | null;
  apiKey: string | null;
}

/** TLS to a self-hosted cluster (optionally with a client certificate: mTLS) or to Temporal Cloud. */
export interface TemporalTls {
  /** PEM of the CA that signed the server's certificate; null trusts the system's CAs. */
  serverRootCa: Buffer | null;
  /** PEM client certificate and key, for clusters that require mTLS. */
  clientCert: { crt: Buffer; key: Buffer } | null;
  /** The name the server certificate is checked against, when it differs from the address's host. */
  serverName: string | null;
}

type Env = Record<string, string | undefined>;

export const PRODUCT_NAME = 'Backup Control Plane';
export const PRODUCT_VERSION = '0.1.0';
export { DEFAULT_TASK_QUEUE };

export function loadConfig(env: Env = process.env): AppConfig {
  return {
    databaseUrl: required(env, 'DATABASE_URL'),
    temporal: loadTemporalConfig(env),
    resticBinary: env.RESTIC_BINARY || 'restic',
    secretKey: loadSecretKey(env),
    api: {
      host: env.API_HOST || '127.0.0.1',
      port: integer(env, 'API_PORT', 8080),
    },
  };
}

export function loadTemporalConfig(env: Env = process.env): TemporalConfig {
  return {
    address: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    uiUrl: env.TEMPORAL_UI_URL ? env.TEMPORAL_UI_URL.replace(/\/$/, '') : null,
    tls: loadTemporalTls(env),
    apiKey: env.TEMPORAL_API_KEY || null,
  };
}

/**
 * TLS is on with TEMPORAL_TLS=1, an API key (Temporal Cloud), or any of the certificate files:
 * TEMPORAL_TLS_CA_FILE, TEMPORAL_TLS_CERT_FILE with TEMPORAL_TLS_KEY_FILE (mTLS), and
 * TEMPORAL_TLS_SERVER_NAME.
 */
function loadTemporalTls(env: Env): TemporalTls | null {
  const { TEMPORAL_TLS_CA_FILE: ca, TEMPORAL_TLS_CERT_FILE: cert, TEMPORAL_TLS_KEY_FILE: key, TEMPORAL_TLS_SERVER_NAME: serverName } = env;
  const on = env.TEMPORAL_TLS === '1' || env.TEMPORAL_TLS === 'true' || Boolean(env.TEMPORAL_API_KEY || ca || cert || key || serverName);
  if (!on) return null;
  if (Boolean(cert) !== Boolean(key)) throw new Error('TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together (a client certificate and its key)');
  return {
    serverRootCa: ca ? readFileSync(ca) : null,
    clientCert: cert && key ? { crt: readFileSync(cert), key: readFileSync(key) } : null,
    serverName: serverName || null,
  };
}

/** The AES-256 key that seals secrets at rest: base64 in SECRET_KEY, or a file named by SECRET_KEY_FILE. */
export function loadSecretKey(env: Env = process.env): Buffer {
  const encoded = env.SECRET_KEY || (env.SECRET_KEY_FILE ? readFileSync(env.SECRET_KEY_FILE, 'utf8') : '');
  if (!encoded.trim()) throw new Error('SECRET_KEY or SECRET_KEY_FILE must be set (32 random bytes, base64)');
  const key = Buffer.from(encoded.trim(), 'base64');
  if (key.length !== 32) throw new Error('the secret key must be 32 bytes encoded in base64');
  return key;
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}

function integer(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number`);
  return value;
}
