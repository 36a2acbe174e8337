import type { Logger } from '../log.js';
import { topUsersOf, totalsOf, type MonitoredPop3, type MonitoredSession } from '../monitor/handlers.js';
import type { Counters } from '../pop3/stats.js';
import { sumUserBytes, topOf } from '../pop3/user-traffic.js';
import { asError } from '../errors.js';
import { History, mergePoints, pointBetween, round } from './history.js';
import type { Facts, InitialState, Live, LockRow, Point, SessionRow, Update } from './web/state.js';

/** How often the dashboard samples the counters (and pushes an update) by default. */
export const DEFAULT_SAMPLE_MS = 2_000;
/** The fine window, and the step and span of the coarse one. */
export const FINE_SPAN_MS = 15 * 60_000;
export const COARSE_STEP_MS = 60_000;
export const COARSE_SPAN_MS = 24 * 3_600_000;
/** Session rows sent at most (the total is sent too); locks likewise. */
export const MAX_SESSION_ROWS = 200;
/** Top users shown. */
export const TOP_USERS_SHOWN = 10;

export interface SamplerOptions {
  /** What is sampled: the server, the pool of workers, or every node. */
  readonly pop3: MonitoredPop3;
  /** The server's facts as of now (version, configuration, certificate…). */
  readonly facts: () => Omit<Facts, 'nodes' | 'nodesMissing'>;
  readonly logger: Logger;
  readonly sampleMs?: number;
  readonly now?: () => number;
}

/** Where a session runs, as the dashboard says it. */
function whereOf(s: MonitoredSession): string {
  const worker = s.worker === undefined ? undefined : `worker ${s.worker}`;
  if (s.node !== undefined) return worker === undefined ? s.node : `${s.node} · ${worker}`;
  return worker ?? 'this process';
}

/** The states in which a session holds its maildrop's lock (it opened the maildrop at login). */
const HOLDS_LOCK = new Set(['TRANSACTION', 'UPDATE']);

/**
 * Samples the POP3 side every few seconds, whether or not anybody watches: its counters become
 * rates in two bounded windows (15 minutes, a sample per step; 24 hours, a sample a minute), and
 * its sessions, locks and top users the live part of the page. Listeners get an {@link Update}
 * after each sample. A sample that is still running when the next is due is not doubled.
 */
export class Sampler {
  readonly fine: History;
  readonly coarse = new History(COARSE_STEP_MS, COARSE_SPAN_MS);
  readonly #options: SamplerOptions;
  readonly #now: () => number;
  readonly #listeners = new Set<(update: Update) => void>();
  #last: { t: number; counters: Counters } | undefined;
  /** Fine points since the last coarse one, and the time each covers. */
  #pending: { points: Point[]; stepsMs: number[] } = { points: [], stepsMs: [] };
  #live: Live;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: SamplerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.fine = new History(options.sampleMs ?? DEFAULT_SAMPLE_MS, FINE_SPAN_MS);
    this.#live = this.#liveNow([]);
  }

  start(): void {
    if (this.#timer !== undefined) return;
    void this.tick();
    this.#timer = setInterval(() => void this.tick(), this.fine.stepMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  /** Calls `listener` after every sample; returns how to stop. */
  subscribe(listener: (update: Update) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The page's first load: everything, and the two windows whole. */
  initial(admin: string, csrf: string): InitialState {
    return { ...this.#live, admin, csrf, fine: this.fine.series(), coarse: this.coarse.series() };
  }

  /** One sample now (the timer's work; tests call it to sample without waiting). */
  tick(): Promise<void> {
    this.#running ??= this.#sample().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #sample(): Promise<void> {
    const { pop3, logger } = this.#options;
    try {
      await pop3.refresh?.();
    } catch (error) {
      // A worker or node that did not answer: the figures of the others are still good.
      logger.debug({ err: asError(error) }, 'dashboard: refresh failed');
    }
    const t = this.#now();
    const counters = totalsOf(pop3);
    const sessions = pop3.sessions();
    const fine: Point[] = [];
    const coarse: Point[] = [];
    const last = this.#last;
    this.#last = { t, counters };
    if (last !== undefined && t > last.t) {
      const point = pointBetween(last, { t, counters });
      this.fine.push(point);
      fine.push(point);
      this.#pending.points.push(point);
      this.#pending.stepsMs.push(t - last.t);
      if (Math.floor(t / COARSE_STEP_MS) !== Math.floor(last.t / COARSE_STEP_MS)) {
        const merged = mergePoints(this.#pending.points, this.#pending.stepsMs);
        this.#pending = { points: [], stepsMs: [] };
        if (merged !== undefined) {
          this.coarse.push(merged);
          coarse.push(merged);
        }
      }
    }
    this.#live = this.#liveNow(sessions);
    const update: Update = { ...this.#live, fine: fine.map(rounded), coarse: coarse.map(rounded) };
    for (const listener of this.#listeners) listener(update);
  }

  #liveNow(all: readonly MonitoredSession[]): Live {
    const { pop3 } = this.#options;
    const sorted = [...all].sort((a, b) => a.startedAt - b.startedAt);
    const sessions: SessionRow[] = sorted.slice(0, MAX_SESSION_ROWS).map((s) => ({
      key: `${s.node ?? ''}/${s.worker === undefined ? '' : String(s.worker)}/${s.id}`,
      user: s.user ?? null,
      address: s.remoteAddress,
      state: s.state,
      since: s.startedAt,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      where: whereOf(s),
    }));
    const locks: LockRow[] = sorted
      .filter((s) => s.user !== undefined && HOLDS_LOCK.has(s.state))
      .slice(0, MAX_SESSION_ROWS)
      .map((s) => ({ user: s.user ?? '', holder: `${s.remoteAddress} (${whereOf(s)})`, since: s.startedAt }));
    // Finished sessions over the last 24 hours, and the bytes of those still open.
    const finished = topUsersOf(pop3);
    const open = all.flatMap((s) => (s.user === undefined ? [] : [[s.user, s.bytesOut] as const]));
    const topUsers = topOf(sumUserBytes([finished, open]), TOP_USERS_SHOWN).map(([user, bytes]) => ({
      user,
      bytes,
    }));
    const nodes = [...new Set(all.flatMap((s) => (s.node === undefined ? [] : [s.node])))].sort();
    const facts: Facts = {
      ...this.#options.facts(),
      nodes: pop3.nodes === undefined ? nodes : [...pop3.nodes],
      nodesMissing: [...(pop3.nodesMissing ?? [])],
    };
    return { now: this.#now(), sessionsTotal: all.length, sessions, locks, topUsers, facts };
  }
}

function rounded(point: Point): Point {
  const copy: Record<string, number> = {};
  for (const [key, value] of Object.entries(point)) copy[key] = key === 't' ? value : round(value);
  return copy as Point;
}
