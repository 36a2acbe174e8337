import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * A small pool of worker threads for password hashes computed in JavaScript (bcrypt, SHA-crypt),
 * which would otherwise hold the event loop for tens to hundreds of milliseconds per login.
 * Native and node:crypto hashes (Argon2, PBKDF2) already run on libuv's thread pool and do not
 * come here.
 *
 * Workers start on first use, up to `size`; each runs one job at a time and the rest wait in a
 * FIFO queue of at most `maxQueuedJobs` (a job beyond that fails at once with QUEUE_FULL, which a
 * login reports as `-ERR [SYS/TEMP]`); a waiting job whose signal aborts (its client went away)
 * leaves the queue and is never hashed. An idle worker is `unref()`ed, so the pool never keeps the
 * process alive; a busy one is ref'd so that whoever awaits its result gets it. A job that runs
 * past `jobTimeoutMs` fails and its worker is terminated (a synchronous hash cannot be
 * interrupted); a worker that dies fails its job. Either way the next job starts a new worker.
 */

/** What the pool posts to a worker. */
export interface WorkerRequest {
  readonly id: number;
  readonly job: unknown;
}

/** What a worker posts back, once per request. */
export type WorkerReply =
  | { readonly id: number; readonly isOk: true; readonly value: unknown }
  | { readonly id: number; readonly isOk: false; readonly message: string };

export const HashPoolErrorCode = {
  /** The job ran longer than `jobTimeoutMs`; its worker was terminated. */
  TIMEOUT: 'HASH_POOL_TIMEOUT',
  /** The worker running the job died (uncaught error, out of memory, exit). */
  WORKER_EXITED: 'HASH_POOL_WORKER_EXITED',
  /** close() was called while the job was waiting or running. */
  CLOSED: 'HASH_POOL_CLOSED',
  /** The worker ran the job and reported an error. */
  JOB_FAILED: 'HASH_POOL_JOB_FAILED',
  /** `maxQueuedJobs` jobs were already waiting: this one was refused at once. */
  QUEUE_FULL: 'HASH_POOL_QUEUE_FULL',
  /** The job's signal aborted before a worker took it; it was not run. */
  CANCELLED: 'HASH_POOL_CANCELLED',
} as const;
export type HashPoolErrorCode = (typeof HashPoolErrorCode)[keyof typeof HashPoolErrorCode];

export class HashPoolError extends Error {
  override name = 'HashPoolError';
  constructor(
    message: string,
    readonly code: HashPoolErrorCode,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface HashPoolOptions {
  /** Worker threads at most. Default: 2, or 1 on a machine with one CPU. */
  readonly size?: number;
  /**
   * A job still running this long after a worker took it (a new worker's start-up included) fails,
   * and its worker is replaced. Time spent waiting in the queue does not count. Default: 30 s.
   */
  readonly jobTimeoutMs?: number;
  /**
   * Jobs that may wait for a worker; more are refused with QUEUE_FULL. Default: 64, about a
   * second of SHA-crypt on two workers, so that a flood of expensive guesses makes logins fail
   * fast and temporarily instead of waiting past their login timeout.
   */
  readonly maxQueuedJobs?: number;
  /** The worker module. Default: hash-worker next to this module (`.ts` under tsx, `.js` compiled). */
  readonly workerUrl?: URL;
}

export interface HashPoolStats {
  /** Workers alive now. */
  readonly workers: number;
  /** Workers running a job. */
  readonly busy: number;
  /** Jobs waiting for a worker. */
  readonly queued: number;
  /** Workers started since the pool was made, replacements included. */
  readonly started: number;
}

export const DEFAULT_HASH_POOL_SIZE = Math.min(2, availableParallelism());
export const DEFAULT_HASH_JOB_TIMEOUT_MS = 30_000;
export const DEFAULT_HASH_QUEUE_JOBS = 64;

interface Job {
  readonly id: number;
  readonly job: unknown;
  resolve(value: unknown): void;
  reject(error: Error): void;
  /** Removes the abort listener, once the job leaves the queue. */
  settle(): void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The error the worker died of, reported before its `exit`. */
  error: Error | undefined;
}

export class HashPool {
  readonly size: number;
  readonly jobTimeoutMs: number;
  readonly maxQueuedJobs: number;
  readonly #workerUrl: URL;
  readonly #slots = new Set<Slot>();
  readonly #queue: Job[] = [];
  #nextId = 1;
  #started = 0;

  constructor(options: HashPoolOptions = {}) {
    ({
      size: this.size,
      jobTimeoutMs: this.jobTimeoutMs,
      maxQueuedJobs: this.maxQueuedJobs,
    } = checkedOptions(options));
    this.#workerUrl = options.workerUrl ?? siblingModule('./hash-worker.js');
  }

  /**
   * Runs `job` on a worker; resolves to the worker's answer. Rejects with a {@link HashPoolError}:
   * QUEUE_FULL at once when `maxQueuedJobs` wait already, CANCELLED when `signal` aborts first.
   */
  run(job: unknown, options: { readonly signal?: AbortSignal } = {}): Promise<unknown> {
    const { signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new HashPoolError('hash job cancelled', HashPoolErrorCode.CANCELLED));
        return;
      }
      const hasIdleRoom = this.#slots.size < this.size || [...this.#slots].some((s) => s.job === undefined);
      if (!hasIdleRoom && this.#queue.length >= this.maxQueuedJobs) {
        reject(
          new HashPoolError(`${this.maxQueuedJobs} hash jobs waiting already`, HashPoolErrorCode.QUEUE_FULL),
        );
        return;
      }
      const onAbort = (): void => {
        const index = this.#queue.indexOf(entry);
        if (index === -1) return;
        this.#queue.splice(index, 1);
        reject(new HashPoolError('hash job cancelled', HashPoolErrorCode.CANCELLED));
      };
      const entry: Job = {
        id: this.#nextId++,
        job,
        resolve,
        reject,
        settle: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(entry);
      this.#dispatch();
    });
  }

  stats(): HashPoolStats {
    let busy = 0;
    for (const slot of this.#slots) if (slot.job !== undefined) busy += 1;
    return { workers: this.#slots.size, busy, queued: this.#queue.length, started: this.#started };
  }

  /**
   * Fails every waiting and running job with code CLOSED and terminates the workers. The pool
   * stays usable: a later run() starts new workers.
   */
  async close(): Promise<void> {
    const closed = () => new HashPoolError('hash pool closed', HashPoolErrorCode.CLOSED);
    for (const job of this.#queue.splice(0)) {
      job.settle();
      job.reject(closed());
    }
    const slots = [...this.#slots];
    this.#slots.clear();
    for (const slot of slots) this.#finish(slot)?.reject(closed());
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let idle: Slot | undefined;
      for (const slot of this.#slots) if (slot.job === undefined) idle ??= slot;
      if (idle === undefined && this.#slots.size >= this.size) return;
      let slot = idle;
      if (slot === undefined) {
        try {
          slot = this.#start();
        } catch (error) {
          // A worker that cannot even be made (say, tsx missing under a .ts module): fail what waits.
          for (const job of this.#queue.splice(0)) {
            job.settle();
            job.reject(
              new HashPoolError('cannot start a hash worker', HashPoolErrorCode.WORKER_EXITED, {
                cause: error,
              }),
            );
          }
          return;
        }
      }
      const job = this.#queue.shift();
      if (job === undefined) return;
      job.settle();
      slot.job = job;
      slot.worker.ref();
      slot.timer = setTimeout(() => {
        this.#onTimeout(slot);
      }, this.jobTimeoutMs);
      slot.timer.unref();
      slot.worker.postMessage({ id: job.id, job: job.job } satisfies WorkerRequest);
    }
  }

  #start(): Slot {
    const slot: Slot = {
      worker: spawnWorker(this.#workerUrl),
      job: undefined,
      timer: undefined,
      error: undefined,
    };
    this.#started += 1;
    this.#slots.add(slot);
    slot.worker.unref();
    slot.worker.on('message', (reply: WorkerReply) => {
      this.#onReply(slot, reply);
    });
    slot.worker.on('error', (error) => {
      slot.error = error;
    });
    slot.worker.on('exit', (code) => {
      this.#onExit(slot, code);
    });
    return slot;
  }

  /** Takes the slot's job off it and lets the worker idle. */
  #finish(slot: Slot): Job | undefined {
    const job = slot.job;
    slot.job = undefined;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.worker.unref();
    return job;
  }

  #onReply(slot: Slot, reply: WorkerReply): void {
    if (slot.job?.id !== reply.id) return;
    const job = this.#finish(slot);
    if (reply.isOk) job?.resolve(reply.value);
    else job?.reject(new HashPoolError(reply.message, HashPoolErrorCode.JOB_FAILED));
    this.#dispatch();
  }

  #onTimeout(slot: Slot): void {
    const job = this.#finish(slot);
    this.#slots.delete(slot);
    void slot.worker.terminate();
    job?.reject(
      new HashPoolError(`hash job still running after ${this.jobTimeoutMs} ms`, HashPoolErrorCode.TIMEOUT),
    );
    this.#dispatch();
  }

  #onExit(slot: Slot, code: number): void {
    // A worker removed by close() or a timeout has had its job settled already.
    if (!this.#slots.delete(slot)) return;
    this.#finish(slot)?.reject(
      new HashPoolError(`hash worker exited with code ${code}`, HashPoolErrorCode.WORKER_EXITED, {
        cause: slot.error,
      }),
    );
    this.#dispatch();
  }
}

function checkedOptions(options: HashPoolOptions): {
  size: number;
  jobTimeoutMs: number;
  maxQueuedJobs: number;
} {
  const size = options.size ?? DEFAULT_HASH_POOL_SIZE;
  const jobTimeoutMs = options.jobTimeoutMs ?? DEFAULT_HASH_JOB_TIMEOUT_MS;
  const maxQueuedJobs = options.maxQueuedJobs ?? DEFAULT_HASH_QUEUE_JOBS;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`hash pool size must be 1 or more: ${size}`);
  if (!(jobTimeoutMs > 0)) throw new RangeError(`hash job timeout must be positive: ${jobTimeoutMs}`);
  if (!Number.isInteger(maxQueuedJobs) || maxQueuedJobs < 0)
    throw new RangeError(`hash queue length must be 0 or more: ${maxQueuedJobs}`);
  return { size, jobTimeoutMs, maxQueuedJobs };
}

/** `relative` next to this module, with this module's extension: `.ts` from source under tsx, else `.js`. */
function siblingModule(relative: string): URL {
  const isSource = import.meta.url.endsWith('.ts');
  return new URL(isSource ? relative.replace(/\.js$/, '.ts') : relative, import.meta.url);
}

/** Parent flags worth keeping in a worker; the rest are process-wide or meaningless there. */
const INHERITED_FLAGS = new Set(['--enable-source-maps', '--preserve-symlinks']);

function spawnWorker(url: URL): Worker {
  const execArgv = process.execArgv.filter((flag) => INHERITED_FLAGS.has(flag));
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { execArgv });
  // Running from source: Node 20 ignores `--import tsx` in a worker's execArgv (it runs no
  // preload there), so the worker registers tsx's loader itself before importing the module.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true, execArgv });
}

let defaultOptions: HashPoolOptions = {};
let defaultPool: HashPool | undefined;

/** The process-wide pool used by the password schemes, made on first use. */
export function defaultHashPool(): HashPool {
  defaultPool ??= new HashPool(defaultOptions);
  return defaultPool;
}

/**
 * Sets the options of the process-wide pool (size, job timeout, queue length). A pool already made is closed
 * first (its waiting and running jobs fail); the next job starts one with the new options.
 */
export async function configureHashPool(options: HashPoolOptions): Promise<void> {
  checkedOptions(options);
  defaultOptions = options;
  const old = defaultPool;
  defaultPool = undefined;
  await old?.close();
}

/** Stops the process-wide pool's workers (for tests and shutdown). */
export async function closeDefaultHashPool(): Promise<void> {
  await defaultPool?.close();
}
