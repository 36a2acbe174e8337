import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Pop3Limits } from '../pop3/limits.js';
import type { SessionSnapshot } from '../pop3/server.js';
import { ServerStats } from '../pop3/stats.js';
import type { LiveChanges, StartingMessage } from './state.js';

/**
 * Messages between the primary process and its POP3 workers, over the cluster IPC channel. The
 * primary asks (each request carries an id, answered by one {@link WorkerReply}); a worker tells
 * the primary once that it listens, or that it could not start.
 */
export type PrimaryRequest =
  | { readonly kind: 'stats' }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'end-sessions'; readonly user: string; readonly message?: string }
  | { readonly kind: 'set-limits'; readonly limits: Partial<Pop3Limits> }
  | { readonly kind: 'set-root'; readonly root: string }
  | { readonly kind: 'reload-users' }
  | { readonly kind: 'reload-all'; readonly changes: LiveChanges }
  | { readonly kind: 'shutdown'; readonly graceMs: number };

export type PrimaryMessage = PrimaryRequest & { readonly id: number };

/** What a worker counts, as plain data. */
export interface StatsData {
  readonly counters: Record<string, number>;
  readonly logins: [string, { succeeded: number; failed: number }][];
  readonly sessions: SessionSnapshot[];
}

export type WorkerMessage =
  | { readonly kind: 'reply'; readonly id: number; readonly value?: unknown; readonly error?: string }
  | { readonly kind: 'listening'; readonly addresses: { address: string; family: string; port: number }[] }
  | { readonly kind: 'failed'; readonly error: string }
  | StartingMessage;

export type MetricsData = MetricObjectWithValues<MetricValue<string>>[];

/** Every number a {@link ServerStats} holds (but its start time), whatever counters it has. */
export function statsData(stats: ServerStats, sessions: SessionSnapshot[]): StatsData {
  const counters: Record<string, number> = {};
  for (const [key, value] of Object.entries(stats)) {
    if (typeof value === 'number' && key !== 'startedAt') counters[key] = value;
  }
  return { counters, logins: [...stats.logins.entries()], sessions };
}

/** Sums the workers' counters into `into` (a fresh ServerStats of the primary, which keeps its start time). */
export function sumStats(into: ServerStats, parts: readonly StatsData[]): SessionSnapshot[] {
  const target = into as unknown as Record<string, number>;
  for (const key of Object.keys(target))
    if (typeof target[key] === 'number' && key !== 'startedAt') target[key] = 0;
  into.logins.clear();
  const sessions: SessionSnapshot[] = [];
  for (const part of parts) {
    for (const [key, value] of Object.entries(part.counters)) {
      if (key in target && key !== 'startedAt') target[key] = (target[key] ?? 0) + value;
    }
    for (const [method, counts] of part.logins) {
      const sum = into.logins.get(method) ?? { succeeded: 0, failed: 0 };
      sum.succeeded += counts.succeeded;
      sum.failed += counts.failed;
      into.logins.set(method, sum);
    }
    sessions.push(...part.sessions);
  }
  return sessions;
}
