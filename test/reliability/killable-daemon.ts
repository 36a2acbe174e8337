// The real daemon for the crash loop, started in a process group of its own so that one SIGKILL
// reaches it and every worker it forked, with its log lines watched for errors and warnings.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { poplarCommand } from '../helpers/node-script.js';

/** A killed process's group must be gone within this time. */
const GROUP_EXIT_MS = 10_000;
const START_TIMEOUT_MS = 60_000;

const isErrno = (error: unknown, code: string): boolean =>
  (error as NodeJS.ErrnoException | undefined)?.code === code;

/** The daemon, in a process group of its own so that SIGKILL reaches every process it started. */
export class KillableDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  readonly errors: string[] = [];
  readonly #warnings: Record<string, number>;
  #port = 0;
  #tail: string[] = [];

  private constructor(child: ChildProcess, warnings: Record<string, number>) {
    this.child = child;
    this.pid = child.pid ?? 0;
    this.#warnings = warnings;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else
        child.once('exit', () => {
          resolve();
        });
    });
  }

  get port(): number {
    return this.#port;
  }

  /** The last lines the daemon wrote, for failure messages. */
  get tail(): string {
    return this.#tail.join('\n');
  }

  static async start(cwd: string, args: readonly string[], warnings: Record<string, number>) {
    const { command, args: argv } = poplarCommand(args);
    const env: NodeJS.ProcessEnv = { ...process.env };
    // The test runner marks its children; the daemon is not a test file.
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn(command, argv, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new KillableDaemon(child, warnings);
    let started: ((port: number) => void) | undefined;
    const isStarted = new Promise<number>((resolve) => (started = resolve));
    const remember = (line: string): void => {
      daemon.#tail.push(line);
      if (daemon.#tail.length > 40) daemon.#tail.shift();
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      remember(`stderr: ${chunk.trimEnd()}`);
    });
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (raw) => {
      remember(raw);
      let entry: { level?: number; msg?: string; addresses?: { address: string; port: number }[] };
      try {
        entry = JSON.parse(raw) as typeof entry;
      } catch {
        daemon.errors.push(`not a log line: ${raw}`);
        return;
      }
      const level = entry.level ?? 0;
      if (level >= 50) daemon.errors.push(raw);
      else if (level >= 40)
        daemon.#warnings[entry.msg ?? '?'] = (daemon.#warnings[entry.msg ?? '?'] ?? 0) + 1;
      if (entry.msg === 'poplar started') {
        const bound = entry.addresses?.find((a) => a.address === '127.0.0.1') ?? entry.addresses?.[0];
        if (bound !== undefined) started?.(bound.port);
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = setTimeout(resolve, START_TIMEOUT_MS, 'timed out');
    });
    const outcome = await Promise.race([isStarted, daemon.exited.then(() => 'exited'), timedOut]);
    clearTimeout(timer);
    if (typeof outcome !== 'number') {
      daemon.kill();
      await daemon.gone();
      throw new Error(`the daemon did not start (${outcome}):\n${daemon.tail}`);
    }
    daemon.#port = outcome;
    return daemon;
  }

  /** SIGKILL to the whole process group: the daemon and any worker it forked. */
  kill(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch (error) {
      if (!isErrno(error, 'ESRCH')) throw error;
    }
  }

  /** Resolves once the daemon has exited and no process of its group is left. */
  async gone(): Promise<void> {
    await this.exited;
    const deadline = Date.now() + GROUP_EXIT_MS;
    for (;;) {
      try {
        process.kill(-this.pid, 0);
      } catch (error) {
        if (isErrno(error, 'ESRCH')) return;
        throw error;
      }
      // Workers are reparented and reaped by init: nothing to wait on but the group itself.
      if (Date.now() > deadline) throw new Error(`process group ${this.pid} survived SIGKILL`);
      await delay(10);
    }
  }
}
