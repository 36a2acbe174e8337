import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import type { TestContext } from 'node:test';
import { findBinary, installCommand } from '../../interop/require-binary.js';
import { tempDir } from '../temp-dir.js';
import { freePort } from './engine-process.js';

/** A private redis-server for one test: its own folder, a free loopback port, nothing saved. */
export interface RedisEngine {
  /** `redis://127.0.0.1:PORT` (no password in it: see {@link password}). */
  readonly url: string;
  readonly port: number;
  /** The `requirepass` it was started with, if any. */
  readonly password: string | undefined;
  /** Stops it (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop or kill) and waits until it answers. */
  start(): Promise<void>;
  /** Kills it (SIGKILL), as a crash, and waits for it to exit. */
  kill(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered, as a hung server. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
}

/** How long a starting redis-server may take to answer PING. */
const READY_TIMEOUT_MS = 10_000;
const BIND_ATTEMPTS = 5;

/**
 * Starts a private redis-server (Debian's `/usr/bin/redis-server`) for test `t`, stopped in
 * `t.after`. Missing binary: the test fails with the install command (never skips).
 */
export async function startRedis(
  t: TestContext,
  options: { readonly password?: string } = {},
): Promise<RedisEngine> {
  const binary = await findBinary('redis-server');
  if (binary === undefined)
    throw new Error(`redis-server is not installed (${installCommand('redis-server')})`);
  const dir = await tempDir(t, 'poplar-redis-');
  let child: ChildProcess | undefined;
  let port = 0;

  const args = (): string[] => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--logfile',
    '',
    '--loglevel',
    'warning',
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
  ];

  /** Spawns it on `port`; resolves when PING answers, rejects when it exits first (e.g. port taken). */
  const launch = async (): Promise<void> => {
    const proc = spawn(binary, args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    const exited = once(proc, 'exit').then(() => {
      throw new Error(`redis-server exited before answering: ${stderr.trim()}`);
    });
    exited.catch(() => {});
    await Promise.race([waitForPing(port, READY_TIMEOUT_MS, () => proc.exitCode !== null), exited]);
  };

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGCONT');
    proc.kill(signal);
    await exited;
  };

  t.after(async () => {
    child?.kill('SIGCONT');
    await end('SIGKILL');
  });
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      await end('SIGKILL');
      if (attempt >= BIND_ATTEMPTS) throw err;
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    password: options.password,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    start: async () => {
      await end('SIGKILL');
      await launch();
    },
  };
}

/** Polls `port` with PING until a reply comes (+PONG, or -NOAUTH when a password is set), bounded. */
async function waitForPing(port: number, timeoutMs: number, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pingOnce(port)) return;
    if (hasExited()) throw new Error('redis-server exited');
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => {
      done(false);
    });
    socket.on('error', () => {
      done(false);
    });
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (d: string) => {
      reply += d;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
  });
}
