import { Host, SshKey } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { sshKeyConnectionTest } from '../../workflows/connection-tests';
import { RunKindKey } from '../../workflows/search-attributes';
import type { ApiContext, RequestBody } from '../context';
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
  const [keys, total] = await findPage(ctx.state.em, SshKey, page);
  respond(ctx, 200, keys.map(sshKeyView), pageMeta(page, total));
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
  if (hosts > 0) throw conflict('ssh_key_in_use', `SSH key ${key.id} is used by ${hosts} host(s)`);
  await ctx.state.em.removeAndFlush(key);
  respondNoContent(ctx);
}

export async function testSshKey(ctx: ApiContext): Promise<void> {
  const key = await findSshKey(ctx, ctx.state.params.id as number);
  const result = await executeWorkflow(ctx.services, sshKeyConnectionTest, {
    workflowId: oneOffWorkflowId(`ssh-key-test-${key.id}`),
    args: [{ sshKeyId: key.id }],
    typedSearchAttributes: [{ key: RunKindKey, value: 'ssh-key-test' }],
  });
  respond(ctx, 200, result);
}
