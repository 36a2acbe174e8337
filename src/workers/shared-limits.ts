import type { Worker } from 'node:cluster';
import {
  ConnectionRefusal,
  LocalConnectionSlots,
  type ConnectionLimits,
  type ConnectionSlots,
} from '../pop3/connection-slots.js';
import {
  LoginThrottle,
  type Throttle,
  type ThrottleCounts,
  type ThrottleLimits,
  type ThrottleVerdict,
} from '../pop3/throttle.js';
import { isCounterMessage, type CounterAsk, type CounterMessage, type WorkerMessage } from './protocol.js';

/**
 * The primary's side of the machine-wide counters. Workers ask it for a connection slot at every
 * accept (one round trip) and tell it when the connection ends; they tell it each failed login
 * (one round trip, answered with the delay) and each success. Every change of the throttle's counts
 * goes to every worker, whose copy answers the attempts that did not fail without asking. Slots
 * held by a worker that dies are given back.
 */
export class PrimaryCounters {
  readonly #slots = new LocalConnectionSlots();
  readonly #throttle = new LoginThrottle();
  /** Slots by worker and key, so that a dead worker's can be given back. */
  readonly #held = new Map<Worker, Map<string, number>>();
  readonly #workers: () => Iterable<Worker>;

  /** `workers`: every live worker, for the throttle's news. */
  constructor(workers: () => Iterable<Worker>) {
    this.#workers = workers;
  }

  /** Open connections over all workers (for tests and the log). */
  get connections(): number {
    return this.#slots.total;
  }

  /** Answers one {@link CounterAsk} of `worker`. */
  answer(worker: Worker, ask: CounterAsk): void {
    switch (ask.kind) {
      case 'take-connection': {
        const refusal = this.#slots.take(ask.key, ask.limits);
        if (refusal === undefined) this.#hold(worker, ask.key, 1);
        send(worker, { kind: 'take-connection-answer', id: ask.id, key: ask.key, refusal });
        return;
      }
      case 'release-connection':
        if (this.#hold(worker, ask.key, -1)) this.#slots.release(ask.key);
        return;
      case 'login-failed': {
        const verdict = this.#throttle.fail(ask.address, ask.user, ask.limits);
        // The news first: the asking worker's copy is up to date before its answer arrives.
        this.#tell(
          {
            address: ask.address,
            addressFailures: verdict.addressFailures,
            user: ask.user,
            userFailures: verdict.userFailures,
          },
          ask.limits.authThrottleMaxEntries,
        );
        send(worker, { kind: 'login-failed-answer', id: ask.id, verdict });
        return;
      }
      case 'counters-start':
        send(worker, { kind: 'throttle-snapshot', snapshot: this.#throttle.snapshot() });
        return;
      case 'login-succeeded':
        this.#throttle.succeed(ask.user);
        // A count of 0 removes: no entry is added, so no bound applies.
        this.#tell({ addressFailures: 0, user: ask.user, userFailures: 0 }, Number.MAX_SAFE_INTEGER);
        return;
    }
  }

  /** A worker exited: the slots of its connections are free. */
  forget(worker: Worker): void {
    for (const [key, count] of this.#held.get(worker) ?? []) {
      for (let i = 0; i < count; i++) this.#slots.release(key);
    }
    this.#held.delete(worker);
  }

  /** Adds `delta` to the slots `worker` holds under `key`; false when it held none to give back. */
  #hold(worker: Worker, key: string, delta: 1 | -1): boolean {
    const byKey = this.#held.get(worker) ?? new Map<string, number>();
    this.#held.set(worker, byKey);
    const count = (byKey.get(key) ?? 0) + delta;
    if (count < 0) return false;
    if (count === 0) byKey.delete(key);
    else byKey.set(key, count);
    return true;
  }

  #tell(counts: ThrottleCounts, maxEntries: number): void {
    for (const worker of this.#workers()) send(worker, { kind: 'throttle-counts', counts, maxEntries });
  }
}

function send(worker: Worker, message: CounterMessage): void {
  // A worker that is going away (its channel closed) needs no answer; a failed send is no crash.
  if (worker.isConnected()) worker.send(message, () => {});
}

/** What a worker talks to the primary through: its `process`, or a stand-in in tests. */
export interface PrimaryChannel {
  readonly connected: boolean;
  send?: ((message: WorkerMessage) => boolean) | undefined;
  on(event: 'message', listener: (message: { readonly kind: string }) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
}

/**
 * How long a worker waits for the primary's answer about a connection slot or a failed login.
 * The primary answers from memory at once; only a primary that is stopped or overloaded is slower.
 */
export const PRIMARY_ANSWER_TIMEOUT_MS = 2000;

type CounterAnswer = Extract<CounterMessage, { readonly id: number }>;

/** An ask on its way: what to do with the answer, or without one. */
interface Waiting {
  readonly answer: (message: CounterAnswer) => void;
  readonly giveUp: () => void;
}

/**
 * A worker's side of the machine-wide counters: the connection slots and the login throttle its
 * `Pop3Server` is given (`counters` option). A slot and a failed login ask the primary; a login
 * that did not fail is judged by this worker's copy of the throttle's counts, which the primary
 * keeps up to date (and hands whole when the worker starts), so the successful path makes no
 * round trip.
 *
 * Fail safe, when the primary does not answer within `answerTimeoutMs` or its channel is closed:
 * a connection waiting for a slot is refused (`server busy`, never admitted uncounted), and a slot
 * the primary grants later is given back at once; a failed login is judged by the copy alone
 * (the machine's counts as last heard, plus this failure). Nothing waits longer than the timeout.
 */
export class WorkerCounters {
  readonly connections: ConnectionSlots;
  readonly loginThrottle: Throttle;
  readonly #channel: PrimaryChannel;
  readonly #timeoutMs: number;
  readonly #copy = new LoginThrottle();
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;

  constructor(channel: PrimaryChannel = process, answerTimeoutMs = PRIMARY_ANSWER_TIMEOUT_MS) {
    this.#channel = channel;
    this.#timeoutMs = answerTimeoutMs;
    channel.on('message', (message) => {
      this.#receive(message);
    });
    channel.on('disconnect', () => {
      for (const waiting of [...this.#waiting.values()]) waiting.giveUp();
    });
    // A worker started in place of a dead one judges by the machine's counts from the start.
    this.#ask({ kind: 'counters-start' });
    this.connections = {
      take: (key: string, limits: ConnectionLimits) =>
        new Promise<ConnectionRefusal | undefined>((resolve) => {
          this.#wait(
            { kind: 'take-connection', id: this.#nextId++, key, limits },
            (m) => {
              if (m.kind === 'take-connection-answer') resolve(m.refusal);
            },
            () => {
              resolve(ConnectionRefusal.unavailable);
            },
          );
        }),
      release: (key: string) => {
        this.#ask({ kind: 'release-connection', key });
      },
    };
    const copy = this.#copy;
    this.loginThrottle = {
      check: (address: string, user: string | undefined, limits: ThrottleLimits) =>
        copy.check(address, user, limits),
      fail: (address: string, user: string | undefined, limits: ThrottleLimits) =>
        new Promise<ThrottleVerdict>((resolve) => {
          this.#wait(
            { kind: 'login-failed', id: this.#nextId++, address, user, limits },
            (m) => {
              if (m.kind === 'login-failed-answer') resolve(m.verdict);
            },
            () => {
              resolve(copy.fail(address, user, limits));
            },
          );
        }),
      succeed: (user: string) => {
        copy.succeed(user);
        this.#ask({ kind: 'login-succeeded', user });
      },
    };
  }

  /**
   * Asks the primary `ask` and hands its answer to `answer`; calls `giveUp` instead when the
   * channel is closed, closes while waiting, or no answer comes within the timeout.
   */
  #wait(
    ask: Extract<CounterAsk, { readonly id: number }>,
    answer: (message: CounterAnswer) => void,
    giveUp: () => void,
  ): void {
    if (!this.#ask(ask)) {
      giveUp();
      return;
    }
    const timer = setTimeout(() => {
      this.#waiting.get(ask.id)?.giveUp();
    }, this.#timeoutMs);
    const settle = (): void => {
      clearTimeout(timer);
      this.#waiting.delete(ask.id);
    };
    this.#waiting.set(ask.id, {
      answer: (message) => {
        settle();
        answer(message);
      },
      giveUp: () => {
        settle();
        giveUp();
      },
    });
  }

  /** Sends `ask` to the primary; false when the channel is closed. */
  #ask(ask: CounterAsk): boolean {
    if (!this.#channel.connected || this.#channel.send === undefined) return false;
    this.#channel.send(ask);
    return true;
  }

  #receive(message: { readonly kind: string }): void {
    if (!isCounterMessage(message)) return; // a request of the primary's: worker.ts answers it
    const m = message;
    switch (m.kind) {
      case 'throttle-counts':
        this.#copy.mirror(m.counts, m.maxEntries);
        return;
      case 'throttle-snapshot':
        this.#copy.restore(m.snapshot);
        return;
      case 'take-connection-answer':
      case 'login-failed-answer': {
        const waiting = this.#waiting.get(m.id);
        if (waiting !== undefined) waiting.answer(m);
        // Too late: the connection was refused meanwhile, so a slot granted now is given back.
        else if (m.kind === 'take-connection-answer' && m.refusal === undefined)
          this.connections.release(m.key);
        return;
      }
    }
  }
}
