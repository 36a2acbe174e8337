/**
 * The logging interface the engine writes to. pino's loggers satisfy it; so does {@link silentLogger}.
 * Log fields: `cid`, `user`, `cmd`, `result`, `ms`. Passwords, AUTH payloads and message bodies are never logged.
 */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
