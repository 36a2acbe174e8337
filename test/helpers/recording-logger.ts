import type { Logger } from '../../src/log.js';

/** A logger that keeps every entry as a JSON line, to check what was (and was not) logged. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (fields: object, message?: string): void => {
    lines.push(JSON.stringify({ ...fields, message }));
  };
  const logger = { lines, debug: log, info: log, warn: log, error: log, child: () => logger };
  return logger;
}
