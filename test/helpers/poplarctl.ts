import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { TestContext } from 'node:test';
import { runToEnd } from './daemon.js';
import { nodeScript } from './node-script.js';

export interface CtlResult {
  /** Exit code; null when the process was killed (by the timeout, say). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CtlOptions {
  /**
   * The child's environment on top of the test process's, which never passes its own
   * POPLAR_TOKEN on: a token reaches poplarctl only when a test gives one.
   */
  readonly env?: Record<string, string>;
  /** Written to stdin, which is then closed (empty by default). */
  readonly input?: string;
  /** The process is killed after this long (default 60 s); the result then has code null. */
  readonly timeoutMs?: number;
}

/**
 * Runs at a time: starting a process is mostly CPU (loading tsx when the tests run from source),
 * so a test that starts many at once gains nothing from more than the cores can run.
 */
const MAX_RUNNING = Math.max(2, availableParallelism());
let running = 0;
const waiting: (() => void)[] = [];

/**
 * Runs `poplarctl args` (from source under tsx, or from the build) to its end. Calls made at once
 * are queued beyond MAX_RUNNING.
 */
export async function runCtl(
  t: TestContext,
  args: readonly string[],
  options: CtlOptions = {},
): Promise<CtlResult> {
  // A finished run hands its place to the first waiting one.
  if (running < MAX_RUNNING) running += 1;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  try {
    return await run(t, args, options);
  } finally {
    const next = waiting.shift();
    if (next === undefined) running -= 1;
    else next();
  }
}

async function run(t: TestContext, args: readonly string[], options: CtlOptions): Promise<CtlResult> {
  const { command, args: argv } = nodeScript('../../src/cli/poplarctl-main.js', import.meta.url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['POPLAR_TOKEN'];
  // The test runner marks its children; poplarctl is not a test file.
  delete env['NODE_TEST_CONTEXT'];
  const child = spawn(command, [...argv, ...args], {
    env: { ...env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return runToEnd(t, child, { ...options, timeoutMs: options.timeoutMs ?? 60_000 });
}

/** The port the daemon's monitor bound on `address` (from its 'poplar started' log line). */
export function monitorPort(started: { readonly [field: string]: unknown }, address = '127.0.0.1'): number {
  const bound = (started['monitor'] ?? []) as readonly { address: string; port: number }[];
  const found = bound.find((b) => b.address === address);
  if (found === undefined)
    throw new Error(`the monitor does not listen on ${address}: ${JSON.stringify(bound)}`);
  return found.port;
}
