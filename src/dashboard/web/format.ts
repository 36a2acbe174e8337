/**
 * The dashboard page's pure logic: number and time formatting, and the chart windows that the
 * server's updates extend. No DOM and no Node, so the root program compiles it for its unit test
 * (test/unit/dashboard-format.test.ts) and the page's program for the browser.
 */
import { SERIES_KEYS, type Point, type Series, type SeriesKey } from './state.js';

/** A window of samples the page keeps and extends: uPlot's columns, `t` in seconds since 1970. */
export interface ChartWindow {
  readonly stepMs: number;
  readonly spanMs: number;
  t: number[];
  values: Record<SeriesKey, number[]>;
}

/** A copy of a server window that {@link appendPoints} may change. */
export function fromSeries(series: Series): ChartWindow {
  const values = {} as Record<SeriesKey, number[]>;
  for (const key of SERIES_KEYS) values[key] = [...series.values[key]];
  return { stepMs: series.stepMs, spanMs: series.spanMs, t: [...series.t], values };
}

/**
 * Adds the points newer than the window's last sample (`Point.t` is in milliseconds, the window's
 * `t` in seconds), then drops the samples older than the window's span before the newest one.
 * Answers whether the window changed.
 */
export function appendPoints(window: ChartWindow, points: readonly Point[]): boolean {
  let changed = false;
  for (const point of points) {
    const t = point.t / 1000;
    const last = window.t.at(-1);
    if (last !== undefined && t <= last) continue;
    window.t.push(t);
    for (const key of SERIES_KEYS) window.values[key].push(point[key]);
    changed = true;
  }
  const newest = window.t.at(-1);
  if (newest === undefined) return changed;
  const oldest = newest - window.spanMs / 1000;
  let drop = 0;
  while (drop < window.t.length && (window.t[drop] ?? 0) < oldest) drop += 1;
  if (drop > 0) {
    window.t.splice(0, drop);
    for (const key of SERIES_KEYS) window.values[key].splice(0, drop);
    changed = true;
  }
  return changed;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Bytes in binary units: `0 B`, `512 B`, `1.5 KiB`, `12 MiB`, `120 MiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  const sign = bytes < 0 ? '-' : '';
  let n = Math.abs(bytes);
  let unit = 0;
  while (n >= 1024 && unit < BYTE_UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || n >= 10 ? 0 : 1;
  // 1023.7 KiB rounds to "1024 KiB": say 1 MiB instead.
  if (unit < BYTE_UNITS.length - 1 && Math.round(n) >= 1024) return `${sign}1 ${BYTE_UNITS[unit + 1] ?? ''}`;
  return `${sign}${n.toFixed(digits)} ${BYTE_UNITS[unit] ?? ''}`;
}

/** A rate per second for an axis or a legend: `0`, `0.25`, `3.5`, `12`, `1.2k`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '–';
  const n = Math.abs(perSecond);
  if (n >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(perSecond / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  if (n >= 10 || Number.isInteger(perSecond)) return perSecond.toFixed(0);
  return String(Number(perSecond.toPrecision(2)));
}

/**
 * A duration for people, to the two largest units: `0 s`, `42 s`, `3 min`, `2 h 5 min`,
 * `3 d 4 h`. Under an hour the seconds are left out past the first minute.
 */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** Whole days from `now` to `notAfter`, negative once past (a certificate's days left). */
export function daysLeft(notAfter: number, now: number): number {
  return Math.floor((notAfter - now) / 86_400_000);
}

/** Under this many days left, the certificate's expiry is shown as a warning. */
export const CERT_WARNING_DAYS = 14;
