import { Host, SshKey } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { sshKeyConnectionTest } from '../../workflows/connection-tests';
import { RunKindKey } from '../../workflows/search-attributes';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondCreated, respondNoContent } from '../envelope';
import { conflict, invalidField } from '../errors';
import { findOr404 } from '../lookup';
import { findPage, pageMeta, pageOf } from '../pagination';
import { generateKey, importKey } from '../ssh-key-material';
import { sshKeyView } from '../views';
import { executeWorkflow, oneOffWorkflowId } from '../workflow-calls';

const findSshKey = (ctx: ApiContext, id: number) => findOr404(ctx.state.em, SshKey, id, 'SSH key');

export async function listSshKeys(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  // A host-scoped caller sees the keys its hosts use, and no other.
  const hosts = authOf(ctx).resources.hosts;
  const where = hosts === null ? {} : { id: { $in: await keysOfHosts(ctx, [...hosts]) } };
  const [keys, total] = await findPage(ctx.state.em, SshKey, page, where);
  respond(ctx, 200, keys.map(sshKeyView), pageMeta(page, total));
}

async function keysOfHosts(ctx: ApiContext, hostIds: number[]): Promise<number[]> {
  const rows = await ctx.state.em.getConnection().execute<{ ssh_key_id: number }[]>(
    'select distinct ssh_key_id from hosts where ssh_key_id is not null and id in (?)',
    [hostIds.length > 0 ? hostIds : [0]],
  );
  return rows.map((row) => row.ssh_key_id);
}

export async function getSshKey(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, sshKeyView(await findSshKey(ctx, ctx.state.params.id as number)));
}

/** Generates an ed25519 key, or imports a given one; only the public half is ever shown again. */
export async function createSshKey(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createSshKey'>;
  if (body.passphrase !== undefined && body.private_key === undefined) {
    throw invalidField('passphrase', 'a passphrase only goes with an imported private_key');
  }
  const comment = `${body.user}@${body.host}`;
  const material = body.private_key ? importKey(body.private_key, body.passphrase ?? null, comment) : generateKey(comment);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const { secrets } = ctx.services;
  const key = ctx.state.em.create(SshKey, {
    name: body.name,
    host: body.host,
    user: body.user,
    port: body.port,
    privateKeySecret: secrets.seal(material.privateKey, SecretPurpose.sshPrivateKey),
    publicKey: material.publicKey,
    fingerprint: material.fingerprint,
    keyType: material.keyType,
    description: body.description ?? null,
  });
  await ctx.state.em.flush();
  respondCreated(ctx, `/ssh-keys/${key.id}`, sshKeyView(key));
}

export async function deleteSshKey(ctx: ApiContext): Promise<void> {
  const key = await findSshKey(ctx, ctx.state.params.id as number);
  const hosts = await ctx.state.em.count(Host, { sshKey: key.id });
  if (hosts > 0) throw conflict('ssh_key_in_use', `SSH key ${key.id} is used by hosts; change or delete them first`);
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { ssh_key: sshKeyView(key) } });
  await ctx.state.em.removeAndFlush(key);
  respondNoContent(ctx);
}

export async function testSshKey(ctx: ApiContext): Promise<void> {
  const key = await findSshKey(ctx, ctx.state.params.id as number);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const result = await executeWorkflow(ctx.services, sshKeyConnectionTest, {
    workflowId: oneOffWorkflowId(`ssh-key-test-${key.id}`),
    args: [{ sshKeyId: key.id }],
    typedSearchAttributes: [{ key: RunKindKey, value: 'ssh-key-test' }],
  });
  respond(ctx, 200, result);
}
