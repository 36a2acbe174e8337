import type { pino } from 'pino';
import type { AdminStore } from '../monitor/admins.js';
import type { MonitorServer } from '../monitor/server.js';
import type { Pop3Side } from './pop3-side.js';
import type { LiveConfig } from './reload.js';
import { asError } from '../errors.js';

export interface Closable {
  close(): unknown;
}

/** After a start that failed half way: whatever is already open would keep the process alive. */
export async function closeAll(opened: readonly Closable[]): Promise<void> {
  for (const c of [...opened].reverse()) await c.close();
}

/** How often a daemon started by npx (npm exec) checks that npx is still its parent. */
const PARENT_CHECK_MS = 500;

/** What a started daemon runs. */
export interface Running {
  readonly side: Pop3Side;
  readonly monitor: MonitorServer | undefined;
  readonly admins: AdminStore | undefined;
  readonly metrics: Closable | undefined;
}

/**
 * Serves until SIGTERM or SIGINT, then stops within the configured `shutdownGraceMs`; resolves to
 * the exit code. SIGHUP calls `reload` (the configuration, the certificates and the users and
 * admins files, one reload after the other).
 */
export function untilStopped(
  running: Running,
  live: LiveConfig,
  reload: () => Promise<unknown>,
  logger: pino.Logger,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let isStopping = false;
    // Holds the event loop until a stop: with every worker dead and no monitor or /metrics, nothing
    // else would while the replacements start, and the primary would exit without a word.
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    // The handlers stay installed until the process exits: a second signal during the grace
    // period is ignored rather than killing the process with the default action.
    const stop = (signal: string): void => {
      if (isStopping) {
        logger.info({ signal }, 'already shutting down');
        return;
      }
      isStopping = true;
      void shutdown(running, signal, live.config.shutdownGraceMs, logger).then(() => {
        clearInterval(keepAlive);
        clearInterval(parentWatch);
        resolve(0);
      });
    };
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
    // npx (npm exec) runs poplar under `sh -c`: a SIGTERM to npx's PID ends npm and the shell but
    // never reaches this process, which would serve on as an orphan. Started that way, the loss of
    // the parent is a stop.
    const parent = process.ppid;
    const parentWatch =
      process.env['npm_command'] === 'exec'
        ? setInterval(() => {
            if (process.ppid !== parent) stop('parent exited');
          }, PARENT_CHECK_MS)
        : undefined;
    process.on('SIGHUP', () => {
      if (isStopping) return;
      reload().catch((error: unknown) => {
        logger.error({ err: asError(error) }, 'reload failed');
      });
    });
  });
}

async function shutdown(
  running: Running,
  signal: string,
  graceMs: number,
  logger: pino.Logger,
): Promise<void> {
  const { side, monitor, admins, metrics } = running;
  logger.info({ signal, sessions: side.sessionCount }, 'shutting down');
  side.usersFile.close();
  admins?.close();
  await Promise.all([monitor?.close(), side.stop(graceMs)]);
  await metrics?.close();
  logger.info('stopped');
}
