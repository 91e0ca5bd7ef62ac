import { servedByWorker, type Poller } from '../../api/task-queue-pollers';

/** Whether a task queue has a worker, from the pollers Temporal reports (their last poll times). */
type Seconds = NonNullable<Poller['lastAccessTime']>['seconds'];
// Temporal's client gives seconds as a Long or, as here, a number.
const polled = (secondsAgo: number): Poller => ({ identity: 'w', lastAccessTime: { seconds: (Math.floor(Date.now() / 1000) - secondsAgo) as unknown as Seconds, nanos: 0 } });

test('a worker that polled either kind of task in the last 2 minutes serves the queue', () => {
  expect(servedByWorker({ workflow: [polled(5)], activity: [polled(5)] })).toBe(true);
  // Its activity slots all taken by long backups, it polls workflow tasks only for a while.
  expect(servedByWorker({ workflow: [polled(5)], activity: [polled(600)] })).toBe(true);
  expect(servedByWorker({ workflow: [], activity: [polled(30)] })).toBe(true);
});

test('no poller, or only pollers last seen over 2 minutes ago, is no worker', () => {
  expect(servedByWorker({ workflow: [], activity: [] })).toBe(false);
  expect(servedByWorker({ workflow: [polled(180)], activity: [polled(300)] })).toBe(false);
  expect(servedByWorker({ workflow: [{ identity: 'never' }], activity: [] })).toBe(false);
});
