import type { Counters } from '../pop3/stats.js';
import { SERIES_KEYS, type Point, type Series, type SeriesKey } from './web/state.js';

/** The counters behind each rate of a {@link Point}; `open` is read as it is. */
const RATE_OF: { readonly [K in Exclude<SeriesKey, 'open'>]: (c: Counters) => number } = {
  connections: (c) => c.connectionsTotal,
  loginsOk: (c) => c.loginsSucceeded,
  loginsFailed: (c) => c.loginsFailed,
  loginsThrottled: (c) => c.loginsThrottled,
  bytesOut: (c) => c.bytesOut,
  retr: (c) => c.messagesRetrieved,
  dele: (c) => c.messagesDeleted,
};

/**
 * The point between two readings of the counters: each rate per second over the time between them.
 * A counter that went down (a worker or node that restarted and counts from 0 again) gives 0, not
 * a negative rate.
 */
export function pointBetween(
  before: { readonly t: number; readonly counters: Counters },
  after: { readonly t: number; readonly counters: Counters },
): Point {
  const seconds = Math.max(0.001, (after.t - before.t) / 1000);
  const point: Record<string, number> = { t: after.t, open: after.counters.connectionsOpen };
  for (const [key, read] of Object.entries(RATE_OF))
    point[key] = Math.max(0, read(after.counters) - read(before.counters)) / seconds;
  return point as Point;
}

/** The average of consecutive points (rates weighted by the time each covers); `open` is the last one's. */
export function mergePoints(points: readonly Point[], stepsMs: readonly number[]): Point | undefined {
  const last = points.at(-1);
  if (last === undefined) return undefined;
  const total = stepsMs.reduce((a, b) => a + b, 0) || 1;
  const merged: Record<string, number> = { t: last.t, open: last.open };
  for (const key of SERIES_KEYS) {
    if (key === 'open') continue;
    merged[key] = points.reduce((sum, p, i) => sum + p[key] * (stepsMs[i] ?? 0), 0) / total;
  }
  return merged as Point;
}

/** Samples over a window of time, oldest first; older ones are dropped (bounded: span / step of them). */
export class History {
  readonly stepMs: number;
  readonly spanMs: number;
  readonly #points: Point[] = [];

  constructor(stepMs: number, spanMs: number) {
    this.stepMs = stepMs;
    this.spanMs = spanMs;
  }

  push(point: Point): void {
    this.#points.push(point);
    const oldest = point.t - this.spanMs;
    let drop = 0;
    while (drop < this.#points.length && (this.#points[drop]?.t ?? 0) <= oldest) drop += 1;
    // However the clock moved, never more than the window's number of samples.
    drop = Math.max(drop, this.#points.length - Math.ceil(this.spanMs / this.stepMs) - 1);
    if (drop > 0) this.#points.splice(0, drop);
  }

  get length(): number {
    return this.#points.length;
  }

  /** The window in columns, `t` in seconds (uPlot's unit). */
  series(): Series {
    const values = Object.fromEntries(
      SERIES_KEYS.map((key) => [key, this.#points.map((p) => round(p[key]))]),
    ) as unknown as Series['values'];
    return { stepMs: this.stepMs, spanMs: this.spanMs, t: this.#points.map((p) => p.t / 1000), values };
  }
}

/** Three significant decimals are plenty for a chart, and keep the JSON small. */
export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
