import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

/** A program running on a pseudo-terminal (util-linux `script`), typed at like a person would. */
export interface Terminal {
  /** Everything the program wrote to the terminal so far (stdout and stderr, with CR LF line ends). */
  output(): string;
  /** Resolves once the output holds `text` after the first `since` characters; returns its end. */
  waitFor(text: string, since?: number): Promise<number>;
  /** Sends keys: `\r` is Enter, `\x03` Ctrl-C, `\x7f` Backspace. */
  type(keys: string): void;
  /** Resolves to the program's exit code once it ends. */
  readonly exited: Promise<number | null>;
}

const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `command args` with a terminal as its stdin, stdout and stderr. The test's keys reach it as
 * typed keys; what it writes, including the echo the terminal would show, comes back in `output()`.
 * Killed when the test ends.
 */
export function runInTerminal(
  t: TestContext,
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Terminal {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base['NODE_TEST_CONTEXT'];
  delete base['POPLAR_TOKEN'];
  const childEnv = { ...base, ...env };
  // -e: script exits with the program's status; -q: no "Script started" lines; /dev/null: no typescript file.
  const child = spawn('script', ['-q', '-e', '-c', [command, ...args].map(quote).join(' '), '/dev/null'], {
    env: childEnv,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let text = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      for (const wake of waiters) wake();
      resolve(code);
    });
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    output: () => text,
    exited,
    type(keys) {
      child.stdin.write(keys);
    },
    waitFor(wanted, since = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const at = text.indexOf(wanted, since);
          if (at !== -1) {
            waiters.delete(check);
            resolve(at + wanted.length);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            reject(
              new Error(`ended without writing ${JSON.stringify(wanted)}; it wrote ${JSON.stringify(text)}`),
            );
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}
