/**
 * `npm run bench`: authenticated GET /api/v1/repos (100 repositories, through auth, contract
 * validation, MikroORM and Postgres) against a bare Koa route serving the same JSON from memory.
 * Both run as separate processes, loaded one after the other by the same autocannon settings.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { migrateUp } from '../db/migrate';
import { ensureFirstAdmin } from '../db/first-admin';
import { SecretBox, SecretPurpose } from '../db/secret-box';
import { createDatabaseIfMissing, dropDatabase, withDatabase, withPgClient } from '../scripts/lib/pg-client';
import { PROJECT_ROOT, nodeBin } from '../scripts/lib/paths';
import { freePort, waitForPort } from '../scripts/lib/ports';
import { resolvePostgres } from '../scripts/lib/postgres';
import { startProcess, type ManagedProcess } from '../scripts/lib/processes';

const DURATION_S = Number(process.env.BENCH_DURATION || 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 10);
const REPOS = 100;

interface Measure {
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
}

async function load(url: string, headers: Record<string, string>): Promise<Measure> {
  await autocannon({ url, headers, connections: CONNECTIONS, duration: 2 }); // warm-up
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration: DURATION_S });
  return { requestsPerSecond: result.requests.average, p99Ms: result.latency.p99, non2xx: result.non2xx + result.errors };
}

async function server(name: string, script: string, env: Record<string, string>): Promise<{ process: ManagedProcess; port: number }> {
  const port = await freePort();
  const child = await startProcess({
    name,
    command: nodeBin('tsx'),
    args: [script],
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, API_PORT: String(port), API_HOST: '127.0.0.1' } as Record<string, string>,
    // The servers log as in production (an access line per request), to a file: the figures stay readable.
    logFile: join(tmpdir(), `bcp-bench-${name.replace(/\W+/g, '-')}.log`),
  });
  await waitForPort('127.0.0.1', port, 60_000);
  return { process: child, port };
}

async function main(): Promise<void> {
  const pg = await resolvePostgres({ database: 'backup_control_plane_bench' });
  const database = `bcp_bench_${randomBytes(4).toString('hex')}`;
  await createDatabaseIfMissing(pg.adminUrl, database);
  const databaseUrl = withDatabase(pg.adminUrl, database);
  const dir = mkdtempSync(join(tmpdir(), 'bcp-bench-'));
  const children: ManagedProcess[] = [];
  try {
    await migrateUp(databaseUrl);
    const admin = await ensureFirstAdmin(databaseUrl);
    if (!admin) throw new Error('the bench database already had users');
    // A limit the load never reaches: the rate-limit count is part of what each request costs.
    await withPgClient(databaseUrl, (c) => c.query('update api_tokens set rate_limit_per_minute = 100000000'));
    const secretKey = randomBytes(32);
    const sealed = new SecretBox(secretKey).seal('benchmark password', SecretPurpose.repoPassword);
    await withPgClient(databaseUrl, (c) =>
      c.query(
        `insert into repos (name, path, password_secret, description)
         select 'repo-' || n, '/srv/restic/repo-' || n, $1, 'benchmark repository ' || n from generate_series(1, ${REPOS}) n`,
        [sealed],
      ),
    );

    const api = await server('api', 'api/server.ts', {
      DATABASE_URL: databaseUrl,
      SECRET_KEY: secretKey.toString('base64'),
      TEMPORAL_ADDRESS: '127.0.0.1:1', // never contacted by this route
    });
    children.push(api.process);
    const realUrl = `http://127.0.0.1:${api.port}/api/v1/repos?per_page=${REPOS}`;
    const auth = { authorization: `Bearer ${admin.token}` };
    const sample = await fetch(realUrl, { headers: auth });
    const body = await sample.text();
    if (sample.status !== 200 || (JSON.parse(body) as { data: unknown[] }).data.length !== REPOS) {
      throw new Error(`GET /repos answered ${sample.status}: ${body.slice(0, 200)}`);
    }
    const bodyFile = join(dir, 'repos.json');
    writeFileSync(bodyFile, body);
    const bare = await server('bare-koa', 'bench/bare-koa.ts', { BENCH_BODY_FILE: bodyFile });
    children.push(bare.process);

    console.log(`GET /api/v1/repos (${REPOS} repositories, ${body.length} bytes), ${CONNECTIONS} connections, ${DURATION_S} s each`);
    const baseline = await load(`http://127.0.0.1:${bare.port}/api/v1/repos?per_page=${REPOS}`, auth);
    const real = await load(realUrl, auth);
    for (const [name, m] of [['bare Koa, JSON from memory', baseline], ['API (auth + contract + Postgres)', real]] as const) {
      console.log(`${name.padEnd(34)} ${m.requestsPerSecond.toFixed(0).padStart(7)} req/s   p99 ${String(m.p99Ms).padStart(4)} ms   non-2xx ${m.non2xx}`);
    }
    if (real.non2xx + baseline.non2xx > 0) throw new Error('some requests failed: the figures above are not comparable');
    console.log(`ratio API / baseline: throughput ${(real.requestsPerSecond / baseline.requestsPerSecond).toFixed(3)}, p99 latency ${(real.p99Ms / Math.max(baseline.p99Ms, 1)).toFixed(1)}x`);
  } finally {
    for (const child of children.reverse()) await child.stop();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase(pg.adminUrl, database);
    await pg.stop?.();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
