import type { EntityManager } from '@mikro-orm/postgresql';
import { SecretPurpose, type SecretBox } from './secret-box';

const SEALED_COLUMNS: { table: string; column: string; purpose: string }[] = [
  { table: 'repos', column: 'password_secret', purpose: SecretPurpose.repoPassword },
  { table: 'ssh_keys', column: 'private_key_secret', purpose: SecretPurpose.sshPrivateKey },
  { table: 'hosts', column: 'sudo_password_secret', purpose: SecretPurpose.sudoPassword },
];

/**
 * Fails when the database holds secrets that this key cannot open: started with another key,
 * the control plane would otherwise run and fail every backup with undecryptable passwords.
 */
export async function verifySecretKey(em: EntityManager, secrets: SecretBox): Promise<void> {
  for (const { table, column, purpose } of SEALED_COLUMNS) {
    const [row] = await em.getConnection().execute<{ sealed: string }[]>(`select ${column} as sealed from ${table} where ${column} is not null order by id limit 1`);
    if (!row) continue;
    try {
      secrets.open(row.sealed, purpose);
    } catch {
      throw new Error(
        `the secret key does not open the secrets stored in this database (${table}.${column}): ` +
          'start with the SECRET_KEY or SECRET_KEY_FILE they were sealed with',
      );
    }
  }
}
