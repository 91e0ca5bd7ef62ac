import { spawn, spawnSync } from 'node:child_process';
import { stackEnv } from './stack-env';

/** Runs restic directly against a repository, as an operator would, to check what the product did. */
export function restic(repository: string, password: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(stackEnv().resticBinary, ['-r', repository, ...args], {
    input: `${password}\n`,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The paths of every node in a snapshot (`restic ls --json`). */
export function snapshotPaths(repository: string, password: string, snapshotId: string): string[] {
  const { status, stdout, stderr } = restic(repository, password, ['ls', '--json', snapshotId]);
  if (status !== 0) throw new Error(`restic ls failed (${status}): ${stderr}`);
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { struct_type?: string; message_type?: string; path?: string })
    .filter((node) => (node.struct_type === 'node' || node.message_type === 'node') && node.path)
    .map((node) => node.path as string);
}

/**
 * restic without blocking the event loop: tests that run the API in-process must not stall it
 * (a blocked loop lets keep-alive sockets expire under the client, which then sees ECONNRESET).
 */
export function resticAsync(repository: string, password: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(stackEnv().resticBinary, ['-r', repository, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
    child.stdin.end(`${password}\n`);
  });
}
