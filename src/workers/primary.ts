import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { resolveLimits, type Pop3Limits } from '../pop3/limits.js';
import type { SessionSnapshot } from '../pop3/server.js';
import { ServerStats } from '../pop3/stats.js';
import { sumUserBytes, topOf, TOP_USERS_REPORTED, type UserBytes } from '../pop3/user-traffic.js';
import type { LiveChanges, StateMessage, WorkerState } from './state.js';
import {
  isCounterAsk,
  sumStats,
  type MetricsData,
  type PrimaryRequest,
  type StatsData,
  type WorkerMessage,
} from './protocol.js';
import { asError } from '../errors.js';
import { PrimaryCounters } from './shared-limits.js';

/** A session, with the pid of the worker that serves it. */
type WorkerSession = SessionSnapshot & { readonly worker: number | undefined };

/** How long the primary waits for a worker's answer before giving up on it. */
export const WORKER_REPLY_TIMEOUT_MS = 5000;
/** Pause before a worker that died is replaced, so a worker that cannot start does not spin. */
export const WORKER_RESTART_DELAY_MS = 1000;

export interface WorkerPoolOptions {
  readonly count: number;
  readonly limits: Pop3Limits;
  readonly root: string;
  readonly logger: Logger;
  /** What a starting worker is handed besides the limits and the root (the CLI's configuration now). */
  readonly settings?: () => unknown;
}

interface Pending {
  readonly worker: Worker;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type Address = Extract<WorkerMessage, { kind: 'listening' }>['addresses'][number];

/**
 * The primary's view of its POP3 workers (node:cluster; they share the listening sockets). It
 * forks them, replaces one that dies, forwards what the monitor changes to every worker and sums
 * what they count, so the monitor and /metrics report totals over all workers. Maildrop locks
 * are files, good across processes, so two workers never serve one maildrop at once.
 */
export class WorkerPool {
  /** Sums over the workers, as of the last {@link refresh}. */
  readonly stats = new ServerStats();
  readonly #options: WorkerPoolOptions;
  /** Workers that listen and answer requests. */
  readonly #workers = new Set<Worker>();
  /** Every live worker, starting ones too. */
  readonly #all = new Set<Worker>();
  /** Workers sent their state that do not listen yet: they take every change before they listen. */
  readonly #starting = new Set<Worker>();
  readonly #pending = new Map<number, Pending>();
  /** Connection counts and the login throttle, once for the machine (`shared-limits.ts`). */
  readonly #counters = new PrimaryCounters(() => this.#all);
  #sessions: WorkerSession[] = [];
  #topUsers: UserBytes[] = [];
  #limits: Pop3Limits;
  #root: string;
  #nextId = 1;
  #isStopping = false;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#limits = options.limits;
    this.#root = options.root;
  }

  /** Forks the workers; resolves with the addresses they listen on once every one listens. */
  async start(): Promise<Address[]> {
    const started = await Promise.all(Array.from({ length: this.#options.count }, () => this.#fork()));
    return started[0] ?? [];
  }

  #fork(): Promise<Address[]> {
    const worker = cluster.fork();
    this.#all.add(worker);
    const { logger } = this.#options;
    return new Promise<Address[]>((resolve, reject) => {
      let isUp = false;
      worker.on('message', (message: WorkerMessage) => {
        if (message.kind === 'reply') {
          this.#settle(message.id, message.value, message.error);
        } else if (message.kind === 'starting') {
          const state: StateMessage = { kind: 'state', state: this.#state() };
          worker.send(state);
          this.#starting.add(worker);
        } else if (isCounterAsk(message)) {
          this.#counters.answer(worker, message);
        } else if (message.kind === 'listening') {
          isUp = true;
          this.#starting.delete(worker);
          this.#workers.add(worker);
          resolve(message.addresses);
        } else {
          this.#starting.delete(worker);
          reject(new Error(message.error));
        }
      });
      worker.on('exit', (code, signal) => {
        this.#workers.delete(worker);
        this.#starting.delete(worker);
        this.#all.delete(worker);
        this.#counters.forget(worker);
        for (const [id, pending] of this.#pending) {
          if (pending.worker === worker) this.#settle(id, undefined, 'worker exited');
        }
        if (!isUp) {
          reject(
            new Error(
              `worker ${String(worker.process.pid)} exited while starting (code ${String(code)}, signal ${signal})`,
            ),
          );
          return;
        }
        if (this.#isStopping) return;
        // Exit 0 is a worker that was sent SIGTERM on its own, or with the whole process group
        // just before the primary's own SIGTERM handler runs (which cancels the replacement).
        const level = code === 0 ? 'warn' : 'error';
        logger[level]({ worker: worker.process.pid, code, signal }, 'worker died; starting another');
        setTimeout(() => {
          if (!this.#isStopping) void this.#replace();
        }, WORKER_RESTART_DELAY_MS).unref();
      });
    });
  }

  /** What a worker starts with: the limits and mail root as they are now, and the CLI's settings. */
  #state(): WorkerState {
    return { limits: this.#limits, root: this.#root, settings: this.#options.settings?.() };
  }

  /** A new worker; it starts with what the monitor and SIGHUP changed since start (see {@link #state}). */
  async #replace(): Promise<void> {
    try {
      await this.#fork();
    } catch (error) {
      if (this.#isStopping) return; // stopped while it started: nothing is wrong
      this.#options.logger.error({ err: asError(error) }, 'worker could not be replaced');
      setTimeout(() => void this.#replace(), WORKER_RESTART_DELAY_MS).unref();
    }
  }

  #settle(id: number, value: unknown, error: string | undefined): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (error === undefined) pending.resolve(value);
    else pending.reject(new Error(error));
  }

  request(worker: Worker, request: PrimaryRequest): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(id, undefined, `worker ${String(worker.process.pid)} did not answer ${request.kind}`);
      }, WORKER_REPLY_TIMEOUT_MS);
      this.#pending.set(id, { worker, resolve, reject, timer });
      // A worker that got the signal too (SIGTERM to the process group, as systemd sends it)
      // may have closed its channel already: the send then fails here instead of emitting an
      // 'error' that would crash the primary.
      if (!worker.isConnected()) {
        this.#settle(id, undefined, `worker ${String(worker.process.pid)} is disconnected`);
        return;
      }
      worker.send({ ...request, id }, (error: Error | null) => {
        if (error !== null)
          this.#settle(id, undefined, `worker ${String(worker.process.pid)}: ${error.message}`);
      });
    });
  }

  /** The request to every worker; resolves with their answers. */
  broadcast(request: PrimaryRequest): Promise<unknown[]> {
    return Promise.all([...this.#workers].map((w) => this.request(w, request)));
  }

  /**
   * A change to every worker; resolves with their answers. A starting worker is sent it too and
   * takes it before it listens, unawaited: one that fails to start is replaced with the new state.
   */
  #change(request: PrimaryRequest): Promise<unknown[]> {
    for (const worker of this.#starting) this.request(worker, request).catch(() => undefined);
    return this.broadcast(request);
  }

  get workerCount(): number {
    return this.#workers.size;
  }

  /** Fetches every worker's counters and sessions into {@link stats} and {@link sessions}. */
  async refresh(): Promise<void> {
    const workers = [...this.#workers];
    const parts = (await Promise.all(workers.map((w) => this.request(w, { kind: 'stats' })))) as StatsData[];
    // Each session with the pid of the worker that serves it.
    this.#sessions = sumStats(
      this.stats,
      parts.map((part, i) => ({
        ...part,
        sessions: part.sessions.map((s) => ({ ...s, worker: workers[i]?.process.pid })),
      })),
    ) as WorkerSession[];
    this.#topUsers = topOf(sumUserBytes(parts.map((p) => p.topUsers ?? [])), TOP_USERS_REPORTED);
  }

  sessions(): readonly WorkerSession[] {
    return this.#sessions;
  }

  /** The users with the most bytes over the last 24 hours (finished sessions), as of the last {@link refresh}. */
  topUsers(): readonly UserBytes[] {
    return this.#topUsers;
  }

  get limits(): Pop3Limits {
    return this.#limits;
  }

  /** Validated here, then applied by every worker (and by workers started later). */
  setLimits(changes: Partial<Pop3Limits>): Pop3Limits {
    this.#limits = resolveLimits({ ...this.#limits, ...changes });
    void this.#change({ kind: 'set-limits', limits: changes }).catch((error: unknown) => {
      this.#options.logger.error({ err: asError(error) }, 'limits not applied by every worker');
    });
    return this.#limits;
  }

  get root(): string {
    return this.#root;
  }

  /** The mail root for maildrops opened from now on, in every worker. */
  set root(path: string) {
    this.#root = path;
    void this.#change({ kind: 'set-root', root: path }).catch((error: unknown) => {
      this.#options.logger.error({ err: asError(error) }, 'mail root not changed in every worker');
    });
  }

  async endSessionsOf(user: string, message?: string): Promise<number> {
    const counts = (await this.broadcast({
      kind: 'end-sessions',
      user,
      ...(message === undefined ? {} : { message }),
    })) as number[];
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Every worker re-reads the users file; resolves once all have. */
  async reloadUsers(): Promise<void> {
    await this.#change({ kind: 'reload-users' });
  }

  /** SIGHUP: the users file, and the changed limits, certificates and log level, in every worker. */
  async reloadAll(changes: LiveChanges): Promise<void> {
    if (changes.limits !== undefined) this.#limits = resolveLimits({ ...this.#limits, ...changes.limits });
    await this.#change({ kind: 'reload-all', changes });
  }

  /** Metrics of every worker and of `own` (the primary's), summed the way prom-client sums a cluster. */
  async metrics(own: Registry): Promise<Registry> {
    const parts = (await this.broadcast({ kind: 'metrics' })) as MetricsData[];
    return AggregatorRegistry.aggregate([...parts, await own.getMetricsAsJSON()]);
  }

  /** /metrics with workers: every worker's registry and `own` (the primary's), summed at each scrape. */
  registry(own: Registry): Pick<Registry, 'metrics' | 'contentType'> {
    return {
      contentType: own.contentType,
      metrics: async () => (await this.metrics(own)).metrics(),
    };
  }

  /** Asks every worker to stop within `graceMs`; resolves once all have exited (killing late ones). */
  async stop(graceMs: number): Promise<void> {
    this.#isStopping = true;
    const exited = [...this.#all].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) {
            resolve();
            return;
          }
          const timer = setTimeout(() => {
            worker.kill('SIGKILL');
          }, graceMs + WORKER_REPLY_TIMEOUT_MS);
          worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    );
    for (const worker of this.#all) {
      if (!this.#workers.has(worker)) {
        worker.process.kill('SIGTERM'); // still starting: nothing to hand over
        continue;
      }
      this.request(worker, { kind: 'shutdown', graceMs }).catch(() => {
        // It exits either way; a lost answer changes nothing.
      });
    }
    await Promise.all(exited);
  }
}
