import { isSettingKey, SETTINGS, settingValueProblem, writeSetting, type SettingKey } from '../../common/settings';
import { Setting } from '../../db/entities';
import { SecretPurpose } from '../../db/secret-box';
import { applyAllSchedules } from '../schedule-sync';
import { TASK_SCHEDULE_SETTINGS } from '../../common/task-schedules';
import type { ApiContext, RequestBody } from '../context';
import { isDryRun, respondDryRun } from '../dry-run';
import { respond } from '../envelope';
import { ApiError, invalidField } from '../errors';
import { pageMeta, pageOf } from '../pagination';
import { SECRET_MASK, settingView } from '../views';

function keyOf(ctx: ApiContext): SettingKey {
  const key = String(ctx.state.params.key);
  if (!isSettingKey(key)) throw new ApiError(404, 'unknown_setting', `there is no setting ${key}`);
  return key;
}

export async function listSettings(ctx: ApiContext): Promise<void> {
  const page = pageOf(ctx.state.query);
  const keys = (Object.keys(SETTINGS) as SettingKey[]).sort();
  const stored = new Map((await ctx.state.em.find(Setting, {})).map((row) => [row.key, row]));
  const views = keys.slice(page.offset, page.offset + page.perPage).map((key) => settingView(key, stored.get(key)));
  respond(ctx, 200, views, pageMeta(page, keys.length));
}

export async function getSetting(ctx: ApiContext): Promise<void> {
  const key = keyOf(ctx);
  respond(ctx, 200, settingView(key, (await ctx.state.em.findOne(Setting, { key })) ?? undefined));
}

/** Settings the schedules are made of: every job's (time zone, minute) and the global tasks'. */
const SCHEDULE_SETTINGS: string[] = ['timezone', 'server_timezone', 'cron_run_minute', ...TASK_SCHEDULE_SETTINGS];

export async function updateSetting(ctx: ApiContext): Promise<void> {
  const key = keyOf(ctx);
  const { value } = ctx.request.body as RequestBody<'updateSetting'>;
  const problem = settingValueProblem(key, value);
  if (problem) throw invalidField('value', problem);
  if (isDryRun(ctx)) return respondDryRun(ctx);
  const secret = SETTINGS[key].type === 'secret';
  // The mask a read gave back means "unchanged", not a new secret.
  if (secret && value === SECRET_MASK) return respond(ctx, 200, settingView(key, (await ctx.state.em.findOne(Setting, { key })) ?? undefined));
  // A secret is sealed before it is stored, and never read back through the API.
  const sealed = secret && value !== '' ? ctx.services.secrets.seal(value as string, SecretPurpose.setting) : value;
  const stored = await writeSetting(ctx.state.em, key, sealed);
  if (SCHEDULE_SETTINGS.includes(key)) await applyAllSchedules(ctx.services, ctx.state.em);
  respond(ctx, 200, settingView(key, stored));
}
