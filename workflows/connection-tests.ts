import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HostTestResult, SshKeyTestResult } from '../activities/connection-tests';

const tests = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 1 } });

/** Connects to a host, pins its host key on first use, and checks restic there. */
export async function hostConnectionTest(input: { hostId: number }): Promise<HostTestResult> {
  return tests.testHostConnection(input);
}

/** Logs in with an SSH key at the address it is meant for. */
export async function sshKeyConnectionTest(input: { sshKeyId: number }): Promise<SshKeyTestResult> {
  return tests.testSshKeyConnection(input);
}
