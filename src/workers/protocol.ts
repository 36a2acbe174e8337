import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { ConnectionLimits, ConnectionRefusal } from '../pop3/connection-slots.js';
import type { Pop3Limits } from '../pop3/limits.js';
import type { SessionSnapshot } from '../pop3/server.js';
import { countersOf, ServerStats } from '../pop3/stats.js';
import { TOP_USERS_REPORTED, type UserBytes } from '../pop3/user-traffic.js';
import type { LiveChanges, StartingMessage } from './state.js';
import type { ThrottleCounts, ThrottleLimits, ThrottleSnapshot, ThrottleVerdict } from '../pop3/throttle.js';

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
  /** The users with the most bytes sent over the last 24 hours (finished sessions), most first. */
  readonly topUsers?: UserBytes[];
}

export type WorkerMessage =
  | { readonly kind: 'reply'; readonly id: number; readonly value?: unknown; readonly error?: string }
  | CounterAsk
  | { readonly kind: 'listening'; readonly addresses: { address: string; family: string; port: number }[] }
  | { readonly kind: 'failed'; readonly error: string }
  | StartingMessage;

export type MetricsData = MetricObjectWithValues<MetricValue<string>>[];

/** Every number a {@link ServerStats} holds (but its start time), whatever counters it has. */
export function statsData(stats: ServerStats, sessions: SessionSnapshot[]): StatsData {
  const counters: Record<string, number> = countersOf(stats);
  const topUsers = stats.userTraffic.top(TOP_USERS_REPORTED);
  return { counters, logins: [...stats.logins.entries()], sessions, topUsers };
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

/**
 * A worker's question about the machine-wide counters (`shared-limits.ts`): the per-address and
 * total connection counts and the login throttle live in the primary. A question with an id gets
 * one {@link CounterAnswer}; the others are news that needs no answer.
 */
export type CounterAsk =
  | {
      readonly kind: 'take-connection';
      readonly id: number;
      readonly key: string;
      readonly limits: ConnectionLimits;
    }
  | { readonly kind: 'release-connection'; readonly key: string }
  | {
      readonly kind: 'login-failed';
      readonly id: number;
      readonly address: string;
      readonly user: string | undefined;
      readonly limits: ThrottleLimits;
    }
  | { readonly kind: 'login-succeeded'; readonly user: string }
  /** A worker's counters start: the primary answers with its throttle's tables. */
  | { readonly kind: 'counters-start' };

/** The primary to a worker about the counters: an answer, or the throttle's new counts (sent to every worker). */
export type CounterMessage =
  | {
      readonly kind: 'take-connection-answer';
      readonly id: number;
      /** The key asked about: a slot granted after the worker stopped waiting is given back. */
      readonly key: string;
      readonly refusal: ConnectionRefusal | undefined;
    }
  | { readonly kind: 'login-failed-answer'; readonly id: number; readonly verdict: ThrottleVerdict }
  | { readonly kind: 'throttle-counts'; readonly counts: ThrottleCounts; readonly maxEntries: number }
  | { readonly kind: 'throttle-snapshot'; readonly snapshot: ThrottleSnapshot };

/** Whether a message from a worker is about the counters (`shared-limits.ts` answers it). */
export const isCounterAsk = (message: WorkerMessage): message is CounterAsk =>
  message.kind === 'take-connection' ||
  message.kind === 'release-connection' ||
  message.kind === 'login-failed' ||
  message.kind === 'login-succeeded' ||
  message.kind === 'counters-start';

/** Whether a message from the primary is about the counters (not a {@link PrimaryMessage}). */
export const isCounterMessage = (message: { readonly kind: string }): message is CounterMessage =>
  message.kind === 'take-connection-answer' ||
  message.kind === 'login-failed-answer' ||
  message.kind === 'throttle-counts' ||
  message.kind === 'throttle-snapshot';
