import { FailureType } from '../common/failures';
import { readSettings } from '../common/settings';
import { BackupJob } from '../db/entities';
import { sshTargetForHost } from './access';
import type { ActivityDeps } from './deps';
import { COMMAND_NOT_FOUND, localExecutor, sshExecutor, type Executor } from './executors';
import { typedFailure } from './failure';
import { whileHeartbeating } from './heartbeat';
import { openSsh } from './ssh';

export interface HookOutcome {
  exit_code: number | null;
  /** The last lines of the program's output, stdout and stderr together. */
  output: string;
}

export interface HookRequest {
  jobId: number;
  runId: string;
  phase: 'pre' | 'post';
  argv: string[];
  /** Variables for the program besides BCP_JOB_ID, BCP_RUN_ID and BCP_HOOK_PHASE. */
  env?: Record<string, string>;
}

const OUTPUT_LINES = 20;

/** Pre and post hooks of backup jobs: an allowed program, run as an argv where the job runs. */
export function hookActivities(deps: ActivityDeps) {
  return {
    /**
     * Runs one hook on the job's host over SSH (each argument quoted for the remote login shell,
     * so none is ever parsed as shell syntax) or, for a local job, directly on the worker. The
     * allow-list is read again here: a program removed from it since the job was saved does not run.
     */
    async runHook(request: HookRequest): Promise<HookOutcome> {
      const em = deps.orm.em.fork();
      const job = await em.findOne(BackupJob, request.jobId, { populate: ['host', 'host.sshKey'] });
      if (!job) throw typedFailure(FailureType.InvalidConfiguration, `backup job ${request.jobId} no longer exists`);
      const { hook_allowed_commands: allowed } = await readSettings(em, ['hook_allowed_commands']);
      const [program] = request.argv;
      if (!program || !allowed.includes(program)) {
        throw typedFailure(FailureType.HookNotAllowed, `the ${request.phase} hook program ${program ?? '(none)'} is not in the setting hook_allowed_commands`);
      }
      const lines: string[] = [];
      const keep = (line: string) => {
        lines.push(line);
        if (lines.length > OUTPUT_LINES) lines.shift();
      };
      const env = { BCP_JOB_ID: String(request.jobId), BCP_RUN_ID: request.runId, BCP_HOOK_PHASE: request.phase, ...request.env };
      const run = (exec: Executor) => exec(request.argv, { env, onStdoutLine: keep, onStderrLine: keep });
      const exitCode = await whileHeartbeating(
        () => undefined,
        async () => {
          if (!job.host) return run(localExecutor);
          const { client } = await openSsh(sshTargetForHost(job.host, deps.secrets, { requirePinnedKey: true }));
          try {
            return await run(sshExecutor(client));
          } finally {
            client.end();
          }
        },
      );
      const outcome = { exit_code: exitCode, output: lines.join('\n') };
      if (exitCode === 0) return outcome;
      const why = exitCode === COMMAND_NOT_FOUND ? `${program} could not be started` : `exited with code ${exitCode}`;
      throw typedFailure(FailureType.HookFailed, `the ${request.phase} hook ${why}`, outcome);
    },
  };
}
