// The dashboard's sampler over a fake POP3 side, on a clock the test moves, sampled by hand
// (tick(), never start()): points from counter deltas, the coarse window, sessions, locks, top
// users, facts, subscribers, and samples that neither fail nor double.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COARSE_STEP_MS, MAX_SESSION_ROWS, Sampler } from '../../src/dashboard/sampler.js';
import type { Update } from '../../src/dashboard/web/state.js';
import type { MonitoredPop3, MonitoredSession } from '../../src/monitor/handlers.js';
import { DEFAULT_LIMITS } from '../../src/pop3/limits.js';
import { countersOf, ServerStats, type Counters } from '../../src/pop3/stats.js';
import type { UserBytes } from '../../src/pop3/user-traffic.js';
import { recordingLogger } from '../helpers/recording-logger.js';

/** Mid-minute, so that the first steps stay in one minute. */
const T0 = 1000 * COARSE_STEP_MS + 30_000;

type Fake = {
  -readonly [K in keyof MonitoredPop3]: MonitoredPop3[K];
} & { list: MonitoredSession[]; refreshes: number };

function fakePop3(extra: Partial<MonitoredPop3> = {}): Fake {
  const fake: Fake = {
    stats: new ServerStats(),
    limits: DEFAULT_LIMITS,
    list: [],
    refreshes: 0,
    sessions: () => fake.list,
    setLimits: () => undefined,
    endSessionsOf: () => 0,
    ...extra,
  };
  return fake;
}

let nextId = 0;
function session(fields: Partial<MonitoredSession> = {}): MonitoredSession {
  nextId += 1;
  return {
    id: String(nextId),
    user: undefined,
    remoteAddress: '127.0.0.1',
    state: 'AUTHORIZATION',
    startedAt: T0,
    bytesIn: 0,
    bytesOut: 0,
    ...fields,
  };
}

/** A sampler over `pop3`, its clock, and every update it pushed. */
function sampler(pop3: MonitoredPop3) {
  const clock = { now: T0 };
  const logger = recordingLogger();
  const s = new Sampler({
    pop3,
    logger,
    now: () => clock.now,
    facts: () => ({ version: '9.9.9', startedAt: 1, workers: 1, config: [], certificate: null }),
  });
  const updates: Update[] = [];
  s.subscribe((u) => updates.push(u));
  /** Moves the clock by `ms` and samples; resolves to the update pushed. */
  const tickAfter = async (ms: number): Promise<Update> => {
    clock.now += ms;
    await s.tick();
    const last = updates.at(-1);
    assert.ok(last !== undefined);
    return last;
  };
  return { s, clock, logger, updates, tickAfter };
}

test('the first sample makes no point; each later one a point of rates from the counter deltas', async () => {
  const pop3 = fakePop3();
  const { s, updates, tickAfter } = sampler(pop3);
  pop3.stats.bytesOut = 1000;
  pop3.stats.connectionsTotal = 3;
  const first = await tickAfter(0);
  assert.deepEqual(first.fine, []);
  assert.equal(s.fine.length, 0);
  pop3.stats.bytesOut = 5000;
  pop3.stats.connectionsTotal = 7;
  pop3.stats.messagesRetrieved = 2;
  pop3.stats.connectionsOpen = 4;
  const second = await tickAfter(2000);
  assert.equal(updates.length, 2);
  assert.deepEqual(second.fine, [
    {
      t: T0 + 2000,
      open: 4,
      connections: 2,
      loginsOk: 0,
      loginsFailed: 0,
      loginsThrottled: 0,
      bytesOut: 2000,
      retr: 1,
      dele: 0,
    },
  ]);
  const initial = s.initial('ops', 'csrf-token');
  assert.equal(initial.admin, 'ops');
  assert.equal(initial.csrf, 'csrf-token');
  assert.deepEqual(initial.fine.t, [(T0 + 2000) / 1000]);
  assert.deepEqual(initial.fine.values.bytesOut, [2000]);
});

test('with `totals` (every node), the rates come from them, not from this process’s stats', async () => {
  let totals: Counters = { ...countersOf(new ServerStats()), bytesOut: 100 };
  const pop3 = fakePop3();
  Object.defineProperty(pop3, 'totals', { get: () => totals });
  const { tickAfter } = sampler(pop3);
  await tickAfter(0);
  totals = { ...totals, bytesOut: 1100 };
  pop3.stats.bytesOut = 999_999;
  const update = await tickAfter(1000);
  assert.equal(update.fine[0]?.bytesOut, 1000);
});

test('a coarse point when the minute changes: the fine points since the last one, weighted by their steps', async () => {
  const pop3 = fakePop3();
  const { s, clock, tickAfter } = sampler(pop3);
  clock.now = T0 + 20_000; // 10 s before the minute ends
  await tickAfter(0);
  pop3.stats.bytesOut += 200;
  assert.deepEqual((await tickAfter(2000)).coarse, []); // 100/s over 2 s
  pop3.stats.bytesOut += 200;
  assert.deepEqual((await tickAfter(4000)).coarse, []); // 50/s over 4 s
  pop3.stats.bytesOut += 1200;
  const crossing = await tickAfter(6000); // 200/s over 6 s, into the next minute
  assert.equal(crossing.coarse.length, 1);
  const [merged] = crossing.coarse;
  assert.ok(merged !== undefined);
  // (100 * 2 + 50 * 4 + 200 * 6) / 12, where a plain average would give 116.667.
  assert.equal(merged.bytesOut, 133.333);
  assert.equal(merged.t, clock.now);
  assert.equal(s.coarse.length, 1);
  // The next one starts afresh.
  pop3.stats.bytesOut += 400;
  assert.deepEqual((await tickAfter(2000)).coarse, []);
  const next = await tickAfter(COARSE_STEP_MS);
  assert.equal(next.coarse.length, 1);
  assert.equal(next.coarse[0]?.bytesOut, round3(400 / 62));
});

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

test('sessions: oldest first, at most MAX_SESSION_ROWS rows, and the real total', async () => {
  const pop3 = fakePop3();
  const count = MAX_SESSION_ROWS + 37;
  // Given in a scrambled order.
  for (let i = 0; i < count; i++) pop3.list.push(session({ startedAt: T0 - ((i * 7919) % count) * 1000 }));
  const { tickAfter } = sampler(pop3);
  const update = await tickAfter(0);
  assert.equal(update.sessionsTotal, count);
  assert.equal(update.sessions.length, MAX_SESSION_ROWS);
  const since = update.sessions.map((r) => r.since);
  assert.deepEqual(
    since,
    [...since].sort((a, b) => a - b),
  );
  assert.equal(since[0], T0 - (count - 1) * 1000);
  assert.equal(new Set(update.sessions.map((r) => r.key)).size, MAX_SESSION_ROWS);
});

test('where a session runs: its node, its worker, both, or this process', async () => {
  const pop3 = fakePop3();
  pop3.list = [
    session({ startedAt: T0 - 4, node: 'node-a' }),
    session({ startedAt: T0 - 3, worker: 1234 }),
    session({ startedAt: T0 - 2, node: 'node-b', worker: 99 }),
    session({ startedAt: T0 - 1 }),
  ];
  const { tickAfter } = sampler(pop3);
  const update = await tickAfter(0);
  assert.deepEqual(
    update.sessions.map((r) => r.where),
    ['node-a', 'worker 1234', 'node-b · worker 99', 'this process'],
  );
  // Without `nodes`, the facts name the nodes the sessions name.
  assert.deepEqual(update.facts.nodes, ['node-a', 'node-b']);
  assert.deepEqual(update.facts.nodesMissing, []);
  assert.equal(update.facts.version, '9.9.9');
});

test('locks: the sessions that hold a maildrop (TRANSACTION or UPDATE, logged in), with where they run', async () => {
  const pop3 = fakePop3();
  pop3.list = [
    session({
      startedAt: T0 - 5,
      user: 'alice',
      state: 'TRANSACTION',
      worker: 42,
      remoteAddress: '10.0.0.1',
    }),
    session({ startedAt: T0 - 4, user: undefined, state: 'AUTHORIZATION' }),
    session({ startedAt: T0 - 3, user: 'bob', state: 'AUTHORIZATION' }),
    session({ startedAt: T0 - 2, user: 'carol', state: 'UPDATE', node: 'n2' }),
  ];
  const { tickAfter } = sampler(pop3);
  const update = await tickAfter(0);
  assert.deepEqual(update.locks, [
    { user: 'alice', holder: '10.0.0.1 (worker 42)', since: T0 - 5 },
    { user: 'carol', holder: '127.0.0.1 (n2)', since: T0 - 2 },
  ]);
});

test('top users: finished sessions (topUsers()) plus the bytes of open ones, at most 10, most first', async () => {
  const finished: UserBytes[] = [
    ['alice', 500],
    ['bob', 300],
  ];
  for (let i = 0; i < 20; i++) finished.push([`u${String(i).padStart(2, '0')}`, 10 + i]);
  const pop3 = fakePop3({ topUsers: () => finished });
  // Not read when topUsers() is there.
  pop3.stats.userTraffic.add('ghost', 1_000_000);
  pop3.list = [
    session({ user: 'bob', state: 'TRANSACTION', bytesOut: 400 }),
    session({ user: 'dave', state: 'TRANSACTION', bytesOut: 600 }),
    session({ user: undefined, bytesOut: 9999 }),
  ];
  const { tickAfter } = sampler(pop3);
  const update = await tickAfter(0);
  assert.equal(update.topUsers.length, 10);
  assert.deepEqual(update.topUsers.slice(0, 5), [
    { user: 'bob', bytes: 700 },
    { user: 'dave', bytes: 600 },
    { user: 'alice', bytes: 500 },
    { user: 'u19', bytes: 29 },
    { user: 'u18', bytes: 28 },
  ]);
  assert.ok(!update.topUsers.some((u) => u.user === 'ghost'));
});

test('top users without topUsers(): this process’s stats.userTraffic, plus open sessions', async () => {
  const pop3 = fakePop3();
  pop3.stats.userTraffic.add('alice', 100);
  pop3.stats.userTraffic.add('bob', 50);
  pop3.list = [session({ user: 'bob', state: 'TRANSACTION', bytesOut: 70 })];
  const { tickAfter } = sampler(pop3);
  assert.deepEqual((await tickAfter(0)).topUsers, [
    { user: 'bob', bytes: 120 },
    { user: 'alice', bytes: 100 },
  ]);
});

test('facts: the nodes and the missing ones as the cluster says them', async () => {
  const pop3 = fakePop3({ nodes: ['b', 'a'], nodesMissing: ['c'] });
  pop3.list = [session({ node: 'zzz' })];
  const { tickAfter } = sampler(pop3);
  const update = await tickAfter(0);
  assert.deepEqual(update.facts.nodes, ['b', 'a']);
  assert.deepEqual(update.facts.nodesMissing, ['c']);
});

test('every subscriber gets every update, until it unsubscribes', async () => {
  const pop3 = fakePop3();
  const { s, tickAfter } = sampler(pop3);
  const seen: number[] = [];
  const off = s.subscribe((u) => seen.push(u.now));
  await tickAfter(0);
  await tickAfter(2000);
  off();
  await tickAfter(2000);
  assert.deepEqual(seen, [T0, T0 + 2000]);
});

test('a refresh that rejects (a worker or node that did not answer) still gives a sample', async () => {
  const pop3 = fakePop3({
    refresh: () => Promise.reject(new Error('worker 7 did not answer')),
  });
  pop3.list = [session({ user: 'alice', state: 'TRANSACTION' })];
  const { updates, logger, tickAfter } = sampler(pop3);
  await tickAfter(0);
  pop3.stats.bytesOut = 3000;
  const update = await tickAfter(3000);
  assert.equal(updates.length, 2);
  assert.equal(update.fine[0]?.bytesOut, 1000);
  assert.equal(update.sessionsTotal, 1);
  assert.ok(
    logger.lines.some((l) => l.includes('worker 7 did not answer')),
    logger.lines.join('\n'),
  );
});

test('two ticks at once run one sample', async () => {
  let release = (): void => {};
  const pop3 = fakePop3();
  pop3.refresh = () => {
    pop3.refreshes += 1;
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  };
  const { s, updates } = sampler(pop3);
  const a = s.tick();
  const b = s.tick();
  assert.equal(a, b);
  release();
  await Promise.all([a, b]);
  assert.equal(pop3.refreshes, 1);
  assert.equal(updates.length, 1);
  // Once done, the next tick samples again.
  const c = s.tick();
  assert.notEqual(c, a);
  release();
  await c;
  assert.equal(pop3.refreshes, 2);
  assert.equal(updates.length, 2);
});
