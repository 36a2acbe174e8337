// The dashboard's windows of samples: rates between two readings of the counters, averages of
// several samples into one, and a window that stays bounded whatever the clock does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { History, mergePoints, pointBetween } from '../../src/dashboard/history.js';
import { SERIES_KEYS, type Point } from '../../src/dashboard/web/state.js';
import { countersOf, ServerStats, type Counters } from '../../src/pop3/stats.js';

/** Counters all at 0 but those given. */
function counters(values: Partial<Counters> = {}): Counters {
  return { ...countersOf(new ServerStats()), ...values };
}

/** A point at `t` (ms) with every figure at `value`, but those given. */
function point(t: number, value = 0, values: Partial<Omit<Point, 't'>> = {}): Point {
  return { ...Object.fromEntries(SERIES_KEYS.map((k) => [k, value])), ...values, t } as Point;
}

test('pointBetween: every rate is per second over the time between the readings', () => {
  const before = counters({
    connectionsTotal: 10,
    loginsSucceeded: 4,
    loginsFailed: 1,
    loginsThrottled: 0,
    bytesOut: 1000,
    messagesRetrieved: 2,
    messagesDeleted: 1,
  });
  const after = counters({
    connectionsTotal: 14,
    loginsSucceeded: 8,
    loginsFailed: 3,
    loginsThrottled: 2,
    bytesOut: 9000,
    messagesRetrieved: 6,
    messagesDeleted: 5,
    connectionsOpen: 7,
  });
  const p = pointBetween({ t: 10_000, counters: before }, { t: 12_000, counters: after });
  assert.deepEqual(p, {
    t: 12_000,
    open: 7,
    connections: 2,
    loginsOk: 2,
    loginsFailed: 1,
    loginsThrottled: 1,
    bytesOut: 4000,
    retr: 2,
    dele: 2,
  });
});

test('pointBetween: a counter that went down (a restarted worker or node) gives 0, never a negative rate', () => {
  const p = pointBetween(
    { t: 0, counters: counters({ bytesOut: 5000, connectionsTotal: 9, messagesRetrieved: 3 }) },
    { t: 1000, counters: counters({ bytesOut: 100, connectionsTotal: 12, messagesRetrieved: 0 }) },
  );
  assert.equal(p.bytesOut, 0);
  assert.equal(p.retr, 0);
  assert.equal(p.connections, 3);
  for (const key of SERIES_KEYS) assert.ok(p[key] >= 0, key);
});

test('pointBetween: `open` is taken as it is at the later reading, not as a rate', () => {
  const p = pointBetween(
    { t: 0, counters: counters({ connectionsOpen: 50 }) },
    { t: 4000, counters: counters({ connectionsOpen: 3 }) },
  );
  assert.equal(p.open, 3);
});

test('mergePoints: rates are averaged, each weighted by the time it covers; `open` and `t` are the last one’s', () => {
  const merged = mergePoints(
    [point(2000, 0, { bytesOut: 10, open: 4 }), point(8000, 0, { bytesOut: 40, open: 1 })],
    [2000, 6000],
  );
  assert.ok(merged !== undefined);
  // (10 * 2 + 40 * 6) / 8 = 32.5, where a plain average would give 25.
  assert.equal(merged.bytesOut, 32.5);
  assert.equal(merged.open, 1);
  assert.equal(merged.t, 8000);
  assert.equal(mergePoints([], []), undefined);
});

test('History keeps its span: samples older than it are dropped', () => {
  const h = new History(1000, 5000);
  for (let t = 1000; t <= 10_000; t += 1000) h.push(point(t, t));
  // Only samples newer than 10 000 - 5000.
  assert.deepEqual(h.series().t, [6, 7, 8, 9, 10]);
  assert.deepEqual(h.series().values.bytesOut, [6000, 7000, 8000, 9000, 10_000]);
});

test('History never holds more than span / step + 1 samples, even when the clock jumps back', () => {
  const h = new History(1000, 5000);
  // A clock that went back: every new sample looks newer than none of the old ones.
  for (let i = 0; i < 100; i++) h.push(point(1_000_000 - i * 10, i));
  assert.ok(h.length <= 6, String(h.length));
  // And samples closer than a step (the clock slowed, or ticks came fast) are bounded too.
  const fast = new History(1000, 5000);
  for (let i = 0; i < 100; i++) fast.push(point(1_000_000 + i, i));
  assert.equal(fast.length, 6);
  // The newest ones are kept.
  assert.equal(fast.series().values.open.at(-1), 99);
});

test('History.series: columns, oldest first, `t` in seconds, values rounded to three decimals', () => {
  const h = new History(2000, 60_000);
  h.push(point(1_700_000_000_000, 1 / 3));
  h.push(point(1_700_000_002_000, 2, { open: 5 }));
  const s = h.series();
  assert.equal(s.stepMs, 2000);
  assert.equal(s.spanMs, 60_000);
  assert.deepEqual(s.t, [1_700_000_000, 1_700_000_002]);
  assert.deepEqual(Object.keys(s.values).sort(), [...SERIES_KEYS].sort());
  assert.deepEqual(s.values.retr, [0.333, 2]);
  assert.deepEqual(s.values.open, [0.333, 5]);
});
