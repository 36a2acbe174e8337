import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';

/** The project's root folder (where package.json is), whether the tests run from build/ or from source. */
export function projectRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> };
    if (pkg.bin?.['poplar'] !== undefined) return dir;
  }
  throw new Error('no package.json with a poplar bin above this file');
}

/** The environment for a child that is not a test file (the runner marks its children). */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

/** Whether a process with this id runs (a zombie, which waits for its parent to reap it, does not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return procStat(pid)[0] !== 'Z';
  } catch {
    return false; // gone between the two looks
  }
}

/** The fields of /proc/PID/stat after the command name: state, parent id, ... (Linux). */
function procStat(pid: number): string[] {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: the fields after it are plain.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The parent process id of `pid`, from /proc (Linux). */
export function parentPid(pid: number): number {
  return Number(procStat(pid)[1]);
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Resolves when `child` has exited. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

export interface LogWatch {
  /** Every stdout line so far, parsed when it is JSON (else `{ msg: line }`). */
  readonly entries: Record<string, unknown>[];
  /** All stdout and stderr so far. */
  output(): string;
  /** The first entry that matches, now or later; rejects after `timeoutMs` or when stdout ends first. */
  waitFor(
    predicate: (entry: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves when stdout has closed (the process and every child sharing its stdout are done). */
  readonly closed: Promise<void>;
}

/** Reads a child's stdout as pino lines (npm's own lines are kept as `{ msg }`). */
export function watchLogs(child: ChildProcess): LogWatch {
  const entries: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let text = '';
  let pending = '';
  let ended = false;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    text += chunk;
  });
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    text += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        entries.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        entries.push({ msg: line });
      }
    }
    for (const wake of waiters) wake();
  });
  const closed = new Promise<void>((resolve) => {
    if (child.stdout === null) resolve();
    child.stdout?.once('close', () => {
      ended = true;
      for (const wake of waiters) wake();
      resolve();
    });
  });
  return {
    entries,
    output: () => text,
    closed,
    waitFor(predicate, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching log line within ${String(timeoutMs)} ms; output:\n${text}`));
        }, timeoutMs);
        function check(): void {
          const found = entries.find(predicate);
          if (found === undefined && !ended) return;
          waiters.delete(check);
          clearTimeout(timer);
          if (found === undefined) reject(new Error(`output ended first:\n${text}`));
          else resolve(found);
        }
        waiters.add(check);
        check();
      });
    },
  };
}

/** Sends SIGKILL to a process group (a child spawned with `detached: true`), if it is still there. */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}
