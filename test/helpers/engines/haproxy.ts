import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, constants, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { installCommand } from '../../interop/require-binary.js';
import { tempDir } from '../temp-dir.js';
import { freePort } from './engine-process.js';

/** Debian's HAProxy (2.6 on bookworm). */
export const HAPROXY_BINARY = '/usr/sbin/haproxy';

/** One backend server: `host:port` of a Poplar node. */
export interface HaproxyBackendServer {
  /** Its name in HAProxy's logs (`pop1`, ...); default `srvN`. */
  readonly name?: string;
  readonly host: string;
  readonly port: number;
}

export interface HaproxyOptions {
  readonly servers: readonly HaproxyBackendServer[];
  /**
   * What HAProxy sends each server first: `v2` (`send-proxy-v2`, the default), `v1`
   * (`send-proxy`), or `none`.
   */
  readonly proxy?: 'v1' | 'v2' | 'none';
  /** The backend's `balance` algorithm; default `roundrobin`. */
  readonly balance?: 'roundrobin' | 'leastconn' | 'first' | 'source';
  /**
   * Health checks (`check`, plus `check-send-proxy` when a PROXY header is sent) every this many
   * milliseconds (`inter`); default none.
   */
  readonly checkIntervalMs?: number;
  /**
   * With checks: what a server must answer first to be up (`option tcp-check`, `tcp-check expect
   * string`), e.g. `+OK`: the greeting. Without it a check is a TCP connect, reset at once.
   */
  readonly checkExpect?: string;
  /** Loopback address the frontend binds; default 127.0.0.1. */
  readonly bind?: string;
  /** `timeout client` and `timeout server`, in milliseconds; default 60000. */
  readonly idleTimeoutMs?: number;
  /** More lines for the backend section (e.g. `option redispatch`, `retries 3`). */
  readonly backendLines?: readonly string[];
}

/** A private HAProxy for one test. */
export interface HaproxyEngine {
  /** The frontend clients connect to. */
  readonly host: string;
  readonly port: number;
  /** The configuration it runs, as written to its folder. */
  readonly config: string;
  /** HAProxy's own log lines so far (`log stdout format raw`: one line per event, tcplog). */
  readonly log: readonly string[];
  /** Resolves with the first log line (from index `since` on) that matches, within `timeoutMs`. */
  waitForLog(
    predicate: (line: string) => boolean,
    options?: { readonly since?: number; readonly timeoutMs?: number },
  ): Promise<string>;
  /** Stops it (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop or kill) and waits until the frontend accepts. */
  start(): Promise<void>;
  /** Kills it (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const BIND_ATTEMPTS = 5;
const MAX_LOG_LINES = 100_000;

/** The configuration for `options`, its frontend on `port`. */
export function haproxyConfig(options: HaproxyOptions, port: number): string {
  const proxy = options.proxy ?? 'v2';
  const send = proxy === 'v2' ? ' send-proxy-v2' : proxy === 'v1' ? ' send-proxy' : '';
  const check =
    options.checkIntervalMs === undefined
      ? ''
      : ` check inter ${options.checkIntervalMs}${proxy === 'none' ? '' : ' check-send-proxy'}`;
  const idle = options.idleTimeoutMs ?? 60_000;
  return [
    'global',
    // Every log line on stdout, without syslog's header: the test reads them.
    '    log stdout format raw local0 info',
    '    maxconn 4096',
    'defaults',
    '    mode tcp',
    '    log global',
    '    option tcplog',
    // The readiness probe's empty connections are not logged.
    '    option dontlognull',
    '    timeout connect 5s',
    `    timeout client ${idle}ms`,
    `    timeout server ${idle}ms`,
    'frontend pop3',
    `    bind ${options.bind ?? '127.0.0.1'}:${port}`,
    '    default_backend nodes',
    'backend nodes',
    `    balance ${options.balance ?? 'roundrobin'}`,
    ...(options.checkExpect === undefined
      ? []
      : ['    option tcp-check', `    tcp-check expect string ${options.checkExpect}`]),
    ...(options.backendLines ?? []).map((line) => `    ${line}`),
    ...options.servers.map(
      (s, i) => `    server ${s.name ?? `srv${i + 1}`} ${s.host}:${s.port}${send}${check}`,
    ),
    '',
  ].join('\n');
}

/**
 * Starts a private HAProxy (Debian's `/usr/sbin/haproxy`, in the foreground with `-db`) for test
 * `t` on a free loopback port, from a configuration written to a temporary folder; stopped in
 * `t.after`. Missing binary: the test fails with the install command (never skips).
 */
export async function startHaproxy(t: TestContext, options: HaproxyOptions): Promise<HaproxyEngine> {
  try {
    await access(HAPROXY_BINARY, constants.X_OK);
  } catch {
    throw new Error(`haproxy is not installed (${installCommand('haproxy')})`);
  }
  const dir = await tempDir(t, 'poplar-haproxy-');
  const host = options.bind ?? '127.0.0.1';
  const log: string[] = [];
  let waiters: (() => void)[] = [];
  const wake = (): void => {
    const all = waiters;
    waiters = [];
    for (const w of all) w();
  };
  let child: ChildProcess | undefined;
  let port = 0;
  let config: string;
  const path = join(dir, 'haproxy.cfg');

  const launch = async (): Promise<void> => {
    const proc = spawn(HAPROXY_BINARY, ['-db', '-f', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let pending = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (log.length < MAX_LOG_LINES) log.push(line);
      wake();
    });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    const exited = once(proc, 'exit').then(() => {
      throw new Error(`haproxy exited before its frontend accepted: ${stderr.trim()}`);
    });
    exited.catch(() => {});
    proc.once('exit', wake);
    await Promise.race([waitForAccept(host, port, () => proc.exitCode !== null), exited]);
  };

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  };

  t.after(() => end('SIGKILL'));
  for (let attempt = 1; ; attempt++) {
    port = await freePort(host);
    config = haproxyConfig(options, port);
    await writeFile(path, config);
    try {
      await launch();
      break;
    } catch (err) {
      await end('SIGKILL');
      if (attempt >= BIND_ATTEMPTS) throw err;
    }
  }
  return {
    host,
    port,
    config,
    log,
    async waitForLog(predicate, { since = 0, timeoutMs = 15_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = log.slice(since).find(predicate);
        if (found !== undefined) return found;
        if (Date.now() > deadline)
          throw new Error(`no such haproxy log line in ${timeoutMs} ms; log:\n${log.join('\n')}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(deadline - Date.now(), 0));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    start: async () => {
      await end('SIGKILL');
      await launch();
    },
  };
}

/** Polls until a TCP connection to `host:port` is accepted (then closes it at once), bounded. */
async function waitForAccept(host: string, port: number, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (await acceptsOnce(host, port)) return;
    if (hasExited()) throw new Error('haproxy exited');
    if (Date.now() > deadline) throw new Error(`haproxy did not accept on ${host}:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function acceptsOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.on('connect', () => {
      done(true);
    });
    socket.on('error', () => {
      done(false);
    });
  });
}
