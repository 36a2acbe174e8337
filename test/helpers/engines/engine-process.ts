// What the engine harnesses (postgres.ts, slapd.ts) share: a free loopback port, a temp folder,
// the install command for a missing binary, running as another account, and one engine process
// watched, started on a free port (another one if it loses it), stopped and started again.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A port of loopback address `host` nobody listens on now (the engine may still lose it: callers retry). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Fails (never skips) when `path` is not an executable, naming the Debian package. */
export async function requireEngine(path: string, what: string, packages: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(`${what} is not installed (apt-get install ${packages})`);
  }
}

/** The account id to run an engine as when the tests run as root; undefined otherwise. */
export async function engineAccount(name: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (flag) => Number((await run('id', [flag, name])).stdout.trim())),
  );
  return { uid: uid ?? 0, gid: gid ?? 0 };
}

/** Runs `command` as `account` (setpriv execs it: the child's pid is the engine's). */
export function asAccount(
  account: { uid: number; gid: number } | undefined,
  command: string,
  args: readonly string[],
): [string, string[]] {
  if (account === undefined) return [command, [...args]];
  return [
    'setpriv',
    [`--reuid=${account.uid}`, `--regid=${account.gid}`, '--clear-groups', '--', command, ...args],
  ];
}

/** Where an engine registers its clean-up: a test's context, or node:test's module-level `after`. */
export interface Cleanup {
  after(fn: () => Promise<void>): void;
}

/** A temporary folder, removed at clean-up (after the engine has stopped: clean-ups run last first). */
export async function engineDir(t: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * An engine for a whole test file (call it at the file's top level): started on first use, stopped
 * after the file's tests.
 */
export function perFile<T>(start: (cleanup: Cleanup) => Promise<T>): () => Promise<T> {
  const cleanups: (() => Promise<void>)[] = [];
  let started: Promise<T> | undefined;
  after(async () => {
    for (const fn of cleanups) await fn();
  });
  return () => (started ??= start({ after: (fn) => cleanups.unshift(fn) }));
}

/** Polls `attempt` until it resolves, at most `tries` times, `everyMs` apart; rejects with the last error. */
export async function pollUntil<T>(attempt: () => Promise<T>, tries = 400, everyMs = 25): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      return await attempt();
    } catch (error) {
      // The engine exited: no use waiting.
      if ((error as { isGone?: boolean }).isGone === true) throw error;
      last = error;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
  throw new Error(`engine not ready: ${(last as Error).message}`, { cause: last });
}

/** One engine process: the port it listens on, and stop() / start() for outage tests. */
export interface EngineProcess {
  readonly port: number;
  /** Stops it (`signal`, then waits for the exit): connections refused until start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port; nothing when it runs. */
  start(): Promise<void>;
}

/**
 * Runs `command(port)` on a free port until `ping(port)` answers (polled, bounded), trying another
 * port if the engine exits first (the port was taken meanwhile); stopped at clean-up.
 */
export async function superviseEngine(
  t: Cleanup,
  options: {
    readonly name: string;
    readonly command: (port: number) => [string, string[]];
    readonly ping: (port: number) => Promise<void>;
    readonly stopSignal: NodeJS.Signals;
  },
): Promise<EngineProcess> {
  let port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async (): Promise<void> => {
    const [command, args] = options.command(port);
    const started = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    started.stderr.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
    });
    let isGone = false;
    exited = new Promise((resolve) =>
      started.once('exit', () => {
        isGone = true;
        resolve();
      }),
    );
    child = started;
    await pollUntil(async () => {
      if (isGone) throw Object.assign(new Error(`${options.name} exited: ${log}`), { isGone: true });
      await options.ping(port);
    });
  };
  const stop = async (): Promise<void> => {
    const running = child;
    if (running === undefined) return;
    child = undefined;
    if (running.exitCode === null && running.signalCode === null) running.kill(options.stopSignal);
    await exited;
  };
  const start = async (): Promise<void> => {
    if (child !== undefined) return;
    await launch().catch(async (error: unknown) => {
      await stop();
      throw error;
    });
  };
  t.after(stop);
  for (let attempt = 0; ; attempt++) {
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
      port = await freePort();
    }
  }
  return {
    get port() {
      return port;
    },
    stop,
    start,
  };
}
