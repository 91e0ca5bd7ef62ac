import { BackupJob, CopyJob, Host, Repo, SshKey } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { hostConnectionTest } from '../../workflows/connection-tests';
import { HostIdKey, RunKindKey } from '../../workflows/search-attributes';
import { idFilter } from '../auth/resource-scope';
import { authOf, type ApiContext, type RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond, respondCreated, respondNoContent } from '../envelope';
import { ApiError, conflict, invalidField } from '../errors';
import { findOr404, referenced } from '../lookup';
import { findPage, pageMeta, pageOf } from '../pagination';
import { localPathProblem } from '../paths';
import { managedRootProblem } from '../../common/restore-roots';
import { userPermissions } from '../auth/roles';
import { hostView } from '../views';
import { executeWorkflow, oneOffWorkflowId } from '../workflow-calls';

const findHost = (ctx: ApiContext, id: number) => findOr404(ctx.state.em, Host, id, 'host', { populate: ['sshKey'] });
const sshKeyOf = (ctx: ApiContext, id: number | null | undefined) => referenced(ctx.state.em, SshKey, id, 'ssh_key_id', 'SSH key');

/** Where managed restores onto the host go decides what they may overwrite: as privileged as the original-location switches. */
function checkRestoreSettings(ctx: ApiContext, body: { restore_managed_root?: string | null; restore_original_enabled?: boolean }): void {
  const path = body.restore_managed_root;
  const problem = path ? (localPathProblem(path) ?? managedRootProblem(path)) : null;
  if (problem) throw invalidField('restore_managed_root', problem);
  if ((path || body.restore_original_enabled) && !userPermissions(authOf(ctx).user).has('settings.manage')) {
    throw new ApiError(403, 'admin_required', 'setting restore_managed_root or restore_original_enabled requires the settings.manage permission');
  }
}

export async function listHosts(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const ids = idFilter(authOf(ctx).resources.hosts);
  const [hosts, total] = await findPage(ctx.state.em, Host, page, ids ? { id: ids } : {});
  respond(ctx, 200, hosts.map(hostView), pageMeta(page, total));
}

export async function getHost(ctx: ApiContext): Promise<void> {
  respond(ctx, 200, hostView(await findHost(ctx, ctx.state.params.id as number)));
}

export async function createHost(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'createHost'>;
  checkRestoreSettings(ctx, body);
  const sshKey = await sshKeyOf(ctx, body.ssh_key_id);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const host = ctx.state.em.create(Host, {
    name: body.name,
    hostname: body.hostname,
    port: body.port,
    user: body.user,
    sshKey,
    description: body.description ?? null,
    restoreManagedRoot: body.restore_managed_root ?? null,
    restoreOriginalEnabled: body.restore_original_enabled,
    sudoPasswordSecret: body.sudo_password ? ctx.services.secrets.seal(body.sudo_password, SecretPurpose.sudoPassword) : null,
    resticPath: body.restic_path,
    hostKeyFingerprint: body.host_key_fingerprint ?? null,
    hostKeyPinnedAt: body.host_key_fingerprint ? new Date() : null,
  });
  await ctx.state.em.flush();
  respondCreated(ctx, `/hosts/${host.id}`, hostView(host));
}

export async function updateHost(ctx: ApiContext): Promise<void> {
  const body = ctx.request.body as RequestBody<'updateHost'>;
  const host = await findHost(ctx, ctx.state.params.id as number);
  if (body.sudo_password !== undefined && body.clear_sudo) {
    throw invalidField('clear_sudo', 'cannot set and clear the sudo password in one request');
  }
  if (body.host_key_fingerprint !== undefined && body.reset_host_key) {
    throw invalidField('reset_host_key', 'cannot pin and reset the host key in one request');
  }
  checkRestoreSettings(ctx, body);
  const moved = (body.hostname !== undefined && body.hostname !== host.hostname) || (body.port !== undefined && body.port !== host.port);
  if (body.name !== undefined) host.name = body.name;
  if (body.hostname !== undefined) host.hostname = body.hostname;
  if (body.port !== undefined) host.port = body.port;
  if (body.user !== undefined) host.user = body.user;
  if (body.ssh_key_id !== undefined) host.sshKey = await sshKeyOf(ctx, body.ssh_key_id);
  if (body.description !== undefined) host.description = body.description;
  if (body.restore_managed_root !== undefined) host.restoreManagedRoot = body.restore_managed_root;
  if (body.restore_original_enabled !== undefined) host.restoreOriginalEnabled = body.restore_original_enabled;
  if (body.restic_path !== undefined) host.resticPath = body.restic_path;
  if (body.sudo_password !== undefined) host.sudoPasswordSecret = ctx.services.secrets.seal(body.sudo_password, SecretPurpose.sudoPassword);
  if (body.clear_sudo) host.sudoPasswordSecret = null;
  if (body.reset_host_key || body.host_key_fingerprint !== undefined || moved) {
    // A new pin (or none, until the next test) replaces everything known about the old key;
    // a host at a new address is another machine until its key is seen or given.
    host.hostKeyFingerprint = body.host_key_fingerprint ?? null;
    host.hostKeyType = null;
    host.hostPublicKey = null;
    host.hostKeyPinnedAt = body.host_key_fingerprint ? new Date() : null;
  }
  if (isDryRun(ctx)) return respondDryRun(ctx);
  await ctx.state.em.flush();
  respond(ctx, 200, hostView(host));
}

export async function deleteHost(ctx: ApiContext): Promise<void> {
  const host = await findHost(ctx, ctx.state.params.id as number);
  const jobs = await ctx.state.em.count(BackupJob, { host: host.id });
  const repos = await ctx.state.em.count(Repo, { sshHost: host.id });
  const copies = await ctx.state.em.count(CopyJob, { destHost: host.id });
  if (jobs + repos + copies > 0) {
    throw conflict('host_in_use', `host ${host.id} is used by backup jobs, repositories or copy jobs; delete or move them first`);
  }
  if (isDryRun(ctx)) return respondDryRun(ctx, { would_delete: { host: hostView(host) } });
  await ctx.state.em.removeAndFlush(host);
  respondNoContent(ctx);
}

/** Connects from a worker (where backups run), pins the host key on first use and checks restic. */
export async function testHost(ctx: ApiContext): Promise<void> {
  const host = await findHost(ctx, ctx.state.params.id as number);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const result = await executeWorkflow(ctx.services, hostConnectionTest, {
    workflowId: oneOffWorkflowId(`host-test-${host.id}`),
    args: [{ hostId: host.id }],
    typedSearchAttributes: [
      { key: RunKindKey, value: 'host-test' },
      { key: HostIdKey, value: String(host.id) },
    ],
  });
  respond(ctx, 200, result);
}
