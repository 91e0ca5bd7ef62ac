import { ALL_SCOPES } from '../api/auth/scopes';
import { generateToken } from '../api/auth/tokens';
import { ApiToken, User } from './entities';
import { openOrm } from './orm';

/**
 * On a database with no users, creates the first admin and an all-scope API token.
 * Returns the token (the only time it is ever visible), or null when users already exist.
 */
export async function ensureFirstAdmin(
  databaseUrl: string,
  username = process.env.ADMIN_USERNAME || 'admin',
): Promise<{ username: string; token: string } | null> {
  const orm = await openOrm(databaseUrl, 1);
  try {
    return await orm.em.fork().transactional(async (em) => {
      // Serialise concurrent first starts so only one admin and one token are created.
      await em.execute('lock table users in share row exclusive mode');
      if ((await em.count(User, {})) > 0) return null;
      const user = em.create(User, { username, role: 'admin' });
      const { token, prefix, hash } = generateToken();
      em.create(ApiToken, {
        user,
        name: 'initial admin token',
        prefix,
        tokenHash: hash,
        scopes: [...ALL_SCOPES],
      });
      return { username, token };
    });
  } finally {
    await orm.close(true);
  }
}
