// The dashboard page's pure logic (src/dashboard/web/format.ts): the units it shows, and how the
// server's updates extend its chart windows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  appendPoints,
  daysLeft,
  formatBytes,
  formatDuration,
  formatRate,
  fromSeries,
} from '../../src/dashboard/web/format.js';
import { SERIES_KEYS, type Point, type Series, type SeriesKey } from '../../src/dashboard/web/state.js';

/** A point at `tMs` whose every figure is `value`. */
function point(tMs: number, value: number): Point {
  return { t: tMs, ...(Object.fromEntries(SERIES_KEYS.map((k) => [k, value])) as Record<SeriesKey, number>) };
}

/** A window of `n` samples a `stepMs` apart ending at `endMs`, each figure its index. */
function series(stepMs: number, spanMs: number, endMs: number, n: number): Series {
  const t = Array.from({ length: n }, (_, i) => (endMs - (n - 1 - i) * stepMs) / 1000);
  const column = t.map((_, i) => i);
  const values = Object.fromEntries(SERIES_KEYS.map((k) => [k, [...column]])) as Record<SeriesKey, number[]>;
  return { stepMs, spanMs, t, values };
}

test('formatBytes: binary units, one decimal under 10, none for bytes', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [10 * 1024, '10 KiB'],
    [1024 * 1024 - 1, '1 MiB'],
    [12.4 * 1024 ** 2, '12 MiB'],
    [4.2e9, '3.9 GiB'],
    [-2048, '-2.0 KiB'],
    [Number.NaN, '–'],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

test('formatRate: whole numbers plain, small rates to two digits, large ones in k and M', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [3, '3'],
    [0.25, '0.25'],
    [0.123, '0.12'],
    [3.5, '3.5'],
    [12.7, '13'],
    [1500, '1.5k'],
    [25_000, '25k'],
    [2_500_000, '2.5M'],
  ];
  for (const [rate, text] of cases) assert.equal(formatRate(rate), text, String(rate));
});

test('formatDuration: the two largest units', () => {
  const cases: [number, string][] = [
    [-5_000, '0 s'],
    [999, '0 s'],
    [42_000, '42 s'],
    [60_000, '1 min'],
    [3 * 60_000 + 59_000, '3 min'],
    [3_600_000, '1 h'],
    [2 * 3_600_000 + 5 * 60_000, '2 h 5 min'],
    [86_400_000, '1 d'],
    [3 * 86_400_000 + 4 * 3_600_000 + 17 * 60_000, '3 d 4 h'],
  ];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
});

test('daysLeft: whole days, negative once past', () => {
  const now = Date.UTC(2026, 11, 7);
  assert.equal(daysLeft(now + 9 * 86_400_000 + 3_600_000, now), 9);
  assert.equal(daysLeft(now + 86_399_999, now), 0);
  assert.equal(daysLeft(now - 1, now), -1);
});

test('fromSeries copies the columns: appending leaves the server data alone', () => {
  const source = series(2000, 10_000, 1_000_000, 3);
  const window = fromSeries(source);
  appendPoints(window, [point(1_002_000, 9)]);
  assert.equal(source.t.length, 3);
  assert.equal(source.values.open.length, 3);
  assert.equal(window.t.length, 4);
});

test('appendPoints converts milliseconds to seconds and skips points not newer than the last', () => {
  const window = fromSeries(series(2000, 60_000, 1_000_000, 3));
  const changed = appendPoints(window, [point(998_000, 7), point(1_000_000, 7), point(1_002_000, 8)]);
  assert.equal(changed, true);
  assert.deepEqual(window.t, [996, 998, 1000, 1002]);
  for (const key of SERIES_KEYS) assert.deepEqual(window.values[key], [0, 1, 2, 8], key);
  assert.equal(appendPoints(window, [point(1_002_000, 9)]), false);
  assert.equal(appendPoints(window, []), false);
});

test('appendPoints drops the samples older than the span before the newest one', () => {
  const window = fromSeries(series(2000, 6000, 1_000_000, 4));
  assert.deepEqual(window.t, [994, 996, 998, 1000]);
  appendPoints(window, [point(1_002_000, 4), point(1_004_000, 5)]);
  // Newest 1004 s, span 6 s: 998 and later stay.
  assert.deepEqual(window.t, [998, 1000, 1002, 1004]);
  for (const key of SERIES_KEYS) assert.deepEqual(window.values[key], [2, 3, 4, 5], key);
});

test('appendPoints fills an empty window', () => {
  const window = fromSeries(series(60_000, 86_400_000, 0, 0));
  assert.equal(appendPoints(window, [point(60_000, 1), point(120_000, 2)]), true);
  assert.deepEqual(window.t, [60, 120]);
  assert.deepEqual(window.values.bytesOut, [1, 2]);
});
