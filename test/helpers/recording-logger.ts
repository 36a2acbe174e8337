import { stdSerializers } from 'pino';
import type { Logger } from '../../src/log.js';

/** An entry as pino writes it: an error (under `err` or anywhere) becomes its type, message and stack. */
export function asLogged(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Error ? stdSerializers.err(v) : v));
}

/** A logger that keeps every entry as a JSON line, to check what was (and was not) logged. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (fields: object, message?: string): void => {
    lines.push(asLogged({ ...fields, message }));
  };
  const logger = { lines, debug: log, info: log, warn: log, error: log, child: () => logger };
  return logger;
}

/** A logger that lets a test wait for a log message (the engine logs before it waits). */
export class WaitableLogger implements Logger {
  readonly messages: string[] = [];
  #waiters: (() => void)[] = [];
  debug(): void {}
  warn(fields: object, message?: string): void {
    this.info(fields, message);
  }
  info(_fields: object, message?: string): void {
    this.messages.push(message ?? '');
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
  error(): void {}
  child(): Logger {
    return this;
  }
  async logged(message: string, count = 1): Promise<void> {
    while (this.messages.filter((m) => m === message).length < count) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
