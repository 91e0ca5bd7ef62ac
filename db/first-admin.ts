import { ALL_SCOPES } from '../api/auth/scopes';
import { generateToken } from '../api/auth/tokens';
import { ApiToken, User } from './entities';
import { openOrm } from './orm';
import type { EntityManager } from '@mikro-orm/postgresql';

function newAdminToken(em: EntityManager, user: User, name: string): string {
  const { token, prefix, hash } = generateToken();
  // Unlimited: tokens it creates may not be looser than it, and it is where the administrator starts.
  em.create(ApiToken, { user, name, prefix, tokenHash: hash, scopes: [...ALL_SCOPES], rateLimitPerMinute: 0 });
  return token;
}

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
      return { username, token: newAdminToken(em, user, 'initial admin token') };
    });
  } finally {
    await orm.close(true);
  }
}

/**
 * A new all-scope token for an existing admin (`username`, else the oldest enabled admin): the way
 * back in when the first token was lost. Returns null when there is no such admin.
 */
export async function mintAdminToken(databaseUrl: string, username?: string): Promise<{ username: string; token: string } | null> {
  const orm = await openOrm(databaseUrl, 1);
  try {
    return await orm.em.fork().transactional(async (em) => {
      const admin = await em.findOne(User, { role: 'admin', enabled: true, ...(username ? { username } : {}) }, { orderBy: { id: 'asc' } });
      if (!admin) return null;
      return { username: admin.username, token: newAdminToken(em, admin, `admin token issued ${new Date().toISOString()}`) };
    });
  } finally {
    await orm.close(true);
  }
}
