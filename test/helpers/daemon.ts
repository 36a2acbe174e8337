import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { poplarCommand } from './node-script.js';

/** One line the daemon logged (pino JSON). `raw` is the line as written. */
export interface LogEntry {
  readonly level: number;
  readonly msg: string;
  readonly raw: string;
  readonly [field: string]: unknown;
}

export interface BoundAddress {
  readonly address: string;
  readonly family: string;
  readonly port: number;
}

export interface DaemonOptions {
  /** Arguments after `poplar`. */
  readonly args?: readonly string[];
  /** Working directory of the daemon (relative paths in the arguments are resolved from it). */
  readonly cwd?: string;
  /** Added to the test process's environment. */
  readonly env?: Record<string, string>;
  /** How long to wait for the 'poplar started' line. */
  readonly startTimeoutMs?: number;
  /** Starts the daemon as the leader of a process group of its own (kill it with `-pid`). */
  readonly detached?: boolean;
  /**
   * Runs it under this host name, in a UTS namespace of its own (`unshare --uts`, as root): a
   * second "machine" for lock files on a shared mail root. The pid stays the daemon's.
   */
  readonly hostname?: string;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every log line so far, parsed, in order. */
  readonly logs: LogEntry[];
  /** The 'poplar started' entry. */
  readonly started: LogEntry;
  /** Bound listeners, from the 'poplar started' entry. */
  readonly addresses: readonly BoundAddress[];
  /** Port of the 127.0.0.1 listener (or of the first one when there is none). */
  readonly port: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /**
   * Resolves when the daemon's stdout has closed: the daemon and every process that shares that
   * stdout (its workers) have exited or closed it.
   */
  readonly outputClosed: Promise<void>;
  /** Whole stdout and stderr so far, as text. */
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the first entry (at index `since` or later) that matches; rejects when the
   * daemon exits first or after `timeoutMs`.
   */
  waitForLog(
    predicate: (entry: LogEntry) => boolean,
    options?: { readonly since?: number; readonly timeoutMs?: number },
  ): Promise<LogEntry>;
  /** Sends `signal` (SIGTERM by default) and resolves to the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const DEFAULT_WAIT_MS = 15_000;

const TEXT_LEVELS: Record<string, number> = {
  TRACE: 10,
  DEBUG: 20,
  INFO: 30,
  WARN: 40,
  ERROR: 50,
  FATAL: 60,
};

/**
 * A line of `--log-format text` (`[time] LEVEL (poplar/pid): message key=value ...`) as an entry:
 * quoted values are JSON strings, numbers and booleans are converted, and a list of listening
 * addresses (`127.0.0.1:1100,[::1]:1100`) becomes `{ address, port }` objects. Undefined when the
 * line has another form.
 */
export function parseTextLine(raw: string): LogEntry | undefined {
  const head = /^\[([^\]]+)\] ([A-Z]+) \(([^/)]+)\/(\d+)\): (.*)$/.exec(raw);
  const level = TEXT_LEVELS[head?.[2] ?? ''];
  if (head === null || level === undefined) return undefined;
  const rest = head[5] ?? '';
  const firstField = rest.search(/ [A-Za-z][A-Za-z0-9]*=/);
  const msg = firstField < 0 ? rest : rest.slice(0, firstField);
  const fields: Record<string, unknown> = {};
  const field = / ([A-Za-z][A-Za-z0-9]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of rest.slice(msg.length).matchAll(field)) {
    const text = m[2] ?? '';
    fields[m[1] ?? ''] = text.startsWith('"')
      ? (JSON.parse(text) as string)
      : /^-?\d+(\.\d+)?$/.test(text)
        ? Number(text)
        : text === 'true' || text === 'false'
          ? text === 'true'
          : text;
  }
  const addresses = fields['addresses'];
  if (typeof addresses === 'string') {
    fields['addresses'] = addresses.split(',').map((a) => {
      const [, v6, v4, port] = /^(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(a) ?? [];
      return { address: v6 ?? v4 ?? a, family: v6 === undefined ? 'IPv4' : 'IPv6', port: Number(port) };
    });
  }
  return { ...fields, level, msg, name: head[3], pid: Number(head[4]), time: head[1], raw };
}

interface Waiter {
  readonly predicate: (entry: LogEntry) => boolean;
  readonly resolve: (entry: LogEntry) => void;
  readonly reject: (error: Error) => void;
}

function spawnPoplar(
  args: readonly string[],
  cwd: string | undefined,
  env: Record<string, string> = {},
  detached = false,
  hostname?: string,
) {
  // Tests never use the fixed default monitor port: several daemons run at once.
  // The subcommands bind nothing (and take their own words first): they get the arguments as given.
  const isDaemon = !['hash-password', 'check-config', 'auth-test'].includes(args[0] ?? '');
  const hasMonitorFlag = args.some((a) => a === '--monitor-port' || a === '--no-monitor');
  // One process unless a test asks for workers: forking one per CPU in every test costs time.
  const hasWorkersFlag = args.includes('--workers');
  const all = [
    ...(isDaemon && !hasMonitorFlag ? ['--monitor-port', '0'] : []),
    ...(isDaemon && !hasWorkersFlag ? ['--workers', '1'] : []),
    ...args,
  ];
  const { command, args: argv } = poplarCommand(all);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The test runner marks its children; the daemon is not a test file.
  delete childEnv['NODE_TEST_CONTEXT'];
  const [file, fileArgs] =
    hostname === undefined
      ? [command, argv]
      : ['unshare', ['--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', hostname, command, ...argv]];
  return spawn(file, fileArgs, { cwd, env: childEnv, detached, stdio: ['pipe', 'pipe', 'pipe'] });
}

function exitOf(child: ChildProcess): Promise<ExitStatus> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Starts `poplar` as a child process and resolves once it logs 'poplar started'. Pass `-p 0`
 * (and a loopback `--listen` outside demo mode) in `args`. The process is killed after the test
 * if it still runs.
 */
export async function startDaemon(t: TestContext, options: DaemonOptions = {}): Promise<RunningDaemon> {
  const child = spawnPoplar(options.args ?? [], options.cwd, options.env, options.detached, options.hostname);
  const exited = exitOf(child);
  t.after(async () => {
    if (options.detached === true && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL'); // the workers too, if any outlived the primary
      } catch {
        // The group is gone already.
      }
    } else if (isRunning(child)) child.kill('SIGKILL');
    await exited;
  });
  const logs: LogEntry[] = [];
  const waiters = new Set<Waiter>();
  let stdout = '';
  let stderr = '';
  let exitStatus: ExitStatus | undefined;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  lines.on('line', (raw) => {
    stdout += `${raw}\n`;
    let entry: LogEntry;
    try {
      entry = { ...(JSON.parse(raw) as Record<string, unknown>), raw } as LogEntry;
    } catch {
      entry = parseTextLine(raw) ?? { level: -1, msg: raw, raw };
    }
    logs.push(entry);
    for (const waiter of waiters) {
      if (waiter.predicate(entry)) {
        waiters.delete(waiter);
        waiter.resolve(entry);
      }
    }
  });
  const closed = new Promise<void>((resolve) => lines.once('close', resolve));
  void Promise.all([exited, closed]).then(([status]) => {
    exitStatus = status;
    for (const waiter of waiters) waiter.reject(new Error(`poplar exited first (${describe()})`));
    waiters.clear();
  });

  function describe(): string {
    const status =
      exitStatus === undefined ? 'still running' : `code ${exitStatus.code}, signal ${exitStatus.signal}`;
    const recent = logs.slice(-10).map((e) => e.msg);
    return `${status}; stderr: ${JSON.stringify(stderr.slice(-2000))}; last log messages: ${JSON.stringify(recent)}`;
  }

  function waitForLog(
    predicate: (entry: LogEntry) => boolean,
    opts: { readonly since?: number; readonly timeoutMs?: number } = {},
  ): Promise<LogEntry> {
    const found = logs.slice(opts.since ?? 0).find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    if (exitStatus !== undefined)
      return Promise.reject(new Error(`poplar exited before the log entry (${describe()})`));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise<LogEntry>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log entry within ${timeoutMs} ms (${describe()})`));
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: (entry) => {
          clearTimeout(timer);
          resolve(entry);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      waiters.add(waiter);
    });
  }

  const started = await waitForLog((e) => e.msg === 'poplar started', {
    timeoutMs: options.startTimeoutMs ?? DEFAULT_WAIT_MS,
  });
  const addresses = started['addresses'] as BoundAddress[];
  const first = addresses.find((a) => a.address === '127.0.0.1') ?? addresses[0];
  if (first === undefined) throw new Error(`poplar started without listeners: ${started.raw}`);

  return {
    child,
    pid: child.pid ?? 0,
    logs,
    started,
    addresses,
    port: first.port,
    exited,
    outputClosed: closed,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (isRunning(child)) child.kill(signal);
      const status = await exited;
      await closed;
      return status.code;
    },
  };
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `poplar` to its end (for `-h`, `hash-password`, or a start that must fail). A process still
 * running after `timeoutMs` is killed, so a daemon that starts when it should not fails the test
 * instead of hanging it.
 */
export async function runPoplar(
  t: TestContext,
  args: readonly string[],
  options: { readonly cwd?: string; readonly input?: string; readonly timeoutMs?: number } = {},
): Promise<RunResult> {
  return runToEnd(t, spawnPoplar(args, options.cwd), options);
}

/**
 * Waits for a child process to end, feeding it `input` and collecting its output. It is killed
 * after `timeoutMs`, and in any case when the test ends, so a child that hangs fails the test
 * instead of hanging it.
 */
export async function runToEnd(
  t: TestContext,
  child: ChildProcessWithoutNullStreams,
  options: { readonly input?: string; readonly timeoutMs?: number } = {},
): Promise<RunResult> {
  const exited = exitOf(child);
  t.after(async () => {
    if (isRunning(child)) child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const stdoutClosed = new Promise((resolve) => child.stdout.once('close', resolve));
  const stderrClosed = new Promise((resolve) => child.stderr.once('close', resolve));
  child.stdin.on('error', () => {}); // the program may exit without reading its input
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? DEFAULT_WAIT_MS);
  const { code, signal } = await exited;
  clearTimeout(timer);
  await Promise.all([stdoutClosed, stderrClosed]);
  return { code, signal, stdout, stderr };
}

/** Whether this machine can listen on the IPv6 loopback address. */
export function hasIpv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => {
      resolve(false);
    });
    server.listen({ host: '::1', port: 0, ipv6Only: true }, () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}
