import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cachedToolPath, compareVersions, ensureCachedTool, lookupCachedTool, parseResticVersion } from '../../scripts/lib/tools';

const spec = { name: 'faketool', version: 'v1.2.3', binary: 'faketool' };

function fakeBuild(delayMs = 0, calls = { n: 0 }) {
  const build = async (outDir: string): Promise<void> => {
    calls.n++;
    await new Promise((r) => setTimeout(r, delayMs));
    fs.writeFileSync(path.join(outDir, spec.binary), '#!/bin/sh\necho fake\n', { mode: 0o755 });
  };
  return { build, calls };
}

describe('tool cache', () => {
  let cacheDir: string;
  beforeEach(() => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcp-toolcache-test-'));
  });
  afterEach(() => {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  const leftovers = (): string[] => fs.readdirSync(cacheDir).filter((f) => f !== `${spec.name}-${spec.version}`);

  it('builds a missing tool once into <cache>/<name>-<version>/<binary>, then serves it from the cache', async () => {
    const { build, calls } = fakeBuild();
    expect(lookupCachedTool({ ...spec, cacheDir })).toBeNull();
    const first = await ensureCachedTool({ ...spec, cacheDir, build });
    expect(first).toBe(path.join(cacheDir, 'faketool-v1.2.3', 'faketool'));
    expect(first).toBe(cachedToolPath({ ...spec, cacheDir }));
    expect(spawnSync(first, [], { encoding: 'utf8' }).stdout.trim()).toBe('fake');
    const second = await ensureCachedTool({ ...spec, cacheDir, build });
    expect(second).toBe(first);
    expect(calls.n).toBe(1);
    expect(lookupCachedTool({ ...spec, cacheDir })).toBe(first);
    expect(leftovers()).toEqual([]); // no lock, no temp build dir
  });

  it('serialises concurrent callers: one build, everyone gets the same binary', async () => {
    const calls = { n: 0 };
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => ensureCachedTool({ ...spec, cacheDir, lockPollMs: 20, build: fakeBuild(200, calls).build })),
    );
    expect(new Set(results).size).toBe(1);
    expect(calls.n).toBe(1);
    expect(leftovers()).toEqual([]);
  });

  it('waits for a lock held by a live process and uses what it built', async () => {
    const lockDir = path.join(cacheDir, `${spec.name}-${spec.version}.lock`);
    fs.mkdirSync(lockDir);
    fs.writeFileSync(
      path.join(lockDir, 'owner.json'),
      JSON.stringify({ pid: process.pid, host: os.hostname(), createdAt: Date.now(), token: 'other' }),
    );
    const { build, calls } = fakeBuild();
    const pending = ensureCachedTool({ ...spec, cacheDir, lockPollMs: 20, build });
    await new Promise((r) => setTimeout(r, 150));
    // The "other builder" finishes: binary in place, lock released.
    const final = cachedToolPath({ ...spec, cacheDir });
    fs.mkdirSync(path.dirname(final), { recursive: true });
    fs.writeFileSync(final, '#!/bin/sh\necho other\n', { mode: 0o755 });
    fs.rmSync(lockDir, { recursive: true });
    await expect(pending).resolves.toBe(final);
    expect(calls.n).toBe(0);
  });

  it('breaks a stale lock whose owner process is gone', async () => {
    const dead = spawnSync('true');
    expect(dead.pid).toBeGreaterThan(0);
    const lockDir = path.join(cacheDir, `${spec.name}-${spec.version}.lock`);
    fs.mkdirSync(lockDir);
    fs.writeFileSync(
      path.join(lockDir, 'owner.json'),
      JSON.stringify({ pid: dead.pid, host: os.hostname(), createdAt: Date.now(), token: 'crashed' }),
    );
    const { build, calls } = fakeBuild();
    await expect(ensureCachedTool({ ...spec, cacheDir, lockPollMs: 20, build })).resolves.toBe(cachedToolPath({ ...spec, cacheDir }));
    expect(calls.n).toBe(1);
    expect(leftovers()).toEqual([]);
  });

  it('breaks a lock older than staleLockMs even if its pid is alive (pid reuse)', async () => {
    const lockDir = path.join(cacheDir, `${spec.name}-${spec.version}.lock`);
    fs.mkdirSync(lockDir);
    fs.writeFileSync(
      path.join(lockDir, 'owner.json'),
      JSON.stringify({ pid: process.pid, host: os.hostname(), createdAt: Date.now() - 10_000, token: 'ancient' }),
    );
    const { build, calls } = fakeBuild();
    await ensureCachedTool({ ...spec, cacheDir, lockPollMs: 20, staleLockMs: 5_000, build });
    expect(calls.n).toBe(1);
  });

  it('a failed build leaves no binary, no lock and no temp dir, and the next call can build', async () => {
    const failing = async (outDir: string): Promise<void> => {
      fs.writeFileSync(path.join(outDir, 'partial'), 'x');
      throw new Error('go install exploded');
    };
    await expect(ensureCachedTool({ ...spec, cacheDir, build: failing })).rejects.toThrow('go install exploded');
    expect(lookupCachedTool({ ...spec, cacheDir })).toBeNull();
    expect(fs.readdirSync(cacheDir)).toEqual([]);

    const noBinary = async (): Promise<void> => undefined;
    await expect(ensureCachedTool({ ...spec, cacheDir, build: noBinary })).rejects.toThrow(/no executable faketool/);
    expect(fs.readdirSync(cacheDir)).toEqual([]);

    const { build, calls } = fakeBuild();
    await ensureCachedTool({ ...spec, cacheDir, build });
    expect(calls.n).toBe(1);
  });
});

describe('restic version helpers', () => {
  it('parses `restic version` output', () => {
    expect(parseResticVersion('restic 0.18.1 compiled with go1.26.8 on linux/amd64\n')).toBe('0.18.1');
    expect(parseResticVersion('restic 0.14.0 compiled with go1.19.8 on linux/amd64')).toBe('0.14.0');
    expect(parseResticVersion('something else')).toBeNull();
  });

  it('compares versions numerically', () => {
    expect(compareVersions('0.14.0', '0.18.0')).toBeLessThan(0);
    expect(compareVersions('0.18.1', '0.18.0')).toBeGreaterThan(0);
    expect(compareVersions('v0.18.0', '0.18.0')).toBe(0);
    expect(compareVersions('0.9.0', '0.10.0')).toBeLessThan(0);
  });
});
