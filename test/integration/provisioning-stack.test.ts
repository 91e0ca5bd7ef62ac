import { Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canConnect, createDatabaseIfMissing, withDatabase, withPgClient } from '../../scripts/lib/pg-client';
import { resolvePostgres } from '../../scripts/lib/postgres';
import { resolveTemporal } from '../../scripts/lib/temporal';
import { stackEnv } from '../support/stack-env';

describe('stack provisioned by globalSetup (seen from a jest worker)', () => {
  it('exposes every variable through process.env', () => {
    const env = stackEnv();
    expect(env.pgAdminUrl).toMatch(/^postgres(ql)?:\/\//);
    expect(env.temporal.address).toMatch(/:\d+$/);
    expect(fs.existsSync(env.resticBinary)).toBe(true);
    expect(env.sshd.port).toBeGreaterThan(0);
    expect(fs.existsSync(env.logDir)).toBe(true);
    expect(process.env.SECRET_KEY || process.env.SECRET_KEY_FILE).toBeTruthy();
  });

  it('TEST_PG_ADMIN_URL can create and drop a database', async () => {
    const { pgAdminUrl } = stackEnv();
    const name = `provisioning_probe_${process.pid}_${Date.now()}`;
    expect(await createDatabaseIfMissing(pgAdminUrl, name)).toBe(true);
    expect(await createDatabaseIfMissing(pgAdminUrl, name)).toBe(false);
    expect(await canConnect(withDatabase(pgAdminUrl, name))).toBe(true);
    await withPgClient(pgAdminUrl, (c) => c.query(`drop database ${c.escapeIdentifier(name)}`));
  });

  it('Temporal answers GetSystemInfo', async () => {
    const { temporal } = stackEnv();
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
      await connection.workflowService.describeNamespace({ namespace: temporal.namespace });
    } finally {
      await connection.close();
    }
  });

  it('restic runs', () => {
    const out = execFileSync(stackEnv().resticBinary, ['version'], { encoding: 'utf8' });
    expect(out).toMatch(/^restic \d+\.\d+\.\d+/);
  });
});

describe('resolveTemporal', () => {
  it('honours TEMPORAL_ADDRESS as is', async () => {
    const t = await resolveTemporal({ persistent: true, address: '10.0.0.1:7233' });
    expect(t).toMatchObject({ address: '10.0.0.1:7233', source: 'env' });
    expect(t.stop).toBeUndefined();
  });

  it('starts an in-memory dev server on a free port that answers GetSystemInfo, and stops it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-temporal-test-'));
    const t = await resolveTemporal({ persistent: false, address: undefined, logFile: path.join(dir, 'temporal.log') });
    try {
      expect(t.source).toBe('dev-server');
      expect(t.uiUrl).toBeNull();
      const connection = await Connection.connect({ address: t.address });
      try {
        const info = await connection.workflowService.getSystemInfo({});
        expect(info.serverVersion).toBeTruthy();
      } finally {
        await connection.close();
      }
    } finally {
      await t.stop?.();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('resolvePostgres', () => {
  it('uses DATABASE_URL as is, with the postgres database as admin URL', async () => {
    const pg = await resolvePostgres({ database: 'ignored', databaseUrl: 'postgres://u:p@db.example:5433/app?sslmode=require' });
    expect(pg).toMatchObject({ source: 'env', url: 'postgres://u:p@db.example:5433/app?sslmode=require' });
    expect(pg.adminUrl).toBe('postgres://u:p@db.example:5433/postgres?sslmode=require');
  });

  it('falls back to an embedded Postgres kept in its data dir across starts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-pg-test-'));
    fs.chmodSync(dir, 0o755); // the postgres user must reach the cluster
    const options = {
      database: 'provisioning_embedded',
      databaseUrl: undefined,
      localAdminUrl: 'postgres://postgres@127.0.0.1:1/postgres', // nothing there
      dataDir: path.join(dir, 'postgres'),
      logFile: path.join(dir, 'postgres.log'),
    };
    try {
      const first = await resolvePostgres(options);
      try {
        expect(first.source).toBe('embedded');
        await withPgClient(first.url, (c) => c.query('create table kept (x int); insert into kept values (42)'));
      } finally {
        await first.stop?.();
      }
      expect(await canConnect(first.adminUrl, 500)).toBe(false);

      const second = await resolvePostgres(options);
      try {
        const { rows } = await withPgClient(second.url, (c) => c.query('select x from kept'));
        expect(rows).toEqual([{ x: 42 }]);
        // The password is not in the log.
        const password = decodeURIComponent(new URL(second.url).password);
        expect(password.length).toBeGreaterThan(20);
        expect(fs.readFileSync(options.logFile, 'utf8')).not.toContain(password);
      } finally {
        await second.stop?.();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
