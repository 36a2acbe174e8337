import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

export interface ClientResult {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** Standard output, or its first `keepStdoutBytes`. */
  readonly stdout: Buffer;
  readonly stdoutBytes: number;
  readonly stdoutSha256: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** The whole environment (nothing is inherited: no proxy variables, no real HOME). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Killed with SIGKILL after this long; default 25 s, within CI's 30 s per-test timeout. */
  readonly timeoutMs?: number;
  /** Keep only this much of standard output (all of it is hashed and counted); default: everything. */
  readonly keepStdoutBytes?: number;
}

/** A minimal environment for a client: PATH, a private HOME, the C locale, UTC. */
export function clientEnv(
  home: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LC_ALL: 'C', TZ: 'UTC', ...extra };
}

/** Runs a client to its end; never rejects for a non-zero exit (the test asserts on the result). */
export function runClient(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const hash = createHash('sha256');
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let stdoutBytes = 0;
    const keep = options.keepStdoutBytes ?? Number.POSITIVE_INFINITY;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 25_000);
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdoutBytes < keep) out.push(chunk.subarray(0, keep - stdoutBytes));
      stdoutBytes += chunk.length;
      hash.update(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err.push(chunk);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(out),
        stdoutBytes,
        stdoutSha256: hash.digest('hex'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** A one-line description for assertion messages. */
export function describeRun(name: string, result: ClientResult): string {
  const how = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal ?? '?'}`;
  return `${name} ${how}; stderr:\n${result.stderr}`;
}
