import type { pino } from 'pino';
import type { AdminStore } from '../monitor/admins.js';
import type { MonitorServer } from '../monitor/server.js';
import type { Pop3Side } from './pop3-side.js';

export interface Closable {
  close(): unknown;
}

/** After a start that failed half way: whatever is already open would keep the process alive. */
export async function closeAll(opened: readonly Closable[]): Promise<void> {
  for (const c of [...opened].reverse()) await c.close();
}

/** What a started daemon runs. */
export interface Running {
  readonly side: Pop3Side;
  readonly monitor: MonitorServer | undefined;
  readonly admins: AdminStore | undefined;
  readonly metrics: Closable | undefined;
}

/**
 * Serves until SIGTERM or SIGINT, then stops within `graceMs`; resolves to the exit code. SIGHUP
 * re-reads the certificates and the users and admins files.
 */
export function untilStopped(running: Running, graceMs: number, logger: pino.Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let isStopping = false;
    // The handlers stay installed until the process exits: a second signal during the grace
    // period is ignored rather than killing the process with the default action.
    const stop = (signal: string): void => {
      if (isStopping) {
        logger.info({ signal }, 'already shutting down');
        return;
      }
      isStopping = true;
      void shutdown(running, signal, graceMs, logger).then(() => {
        resolve(0);
      });
    };
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
    process.on('SIGHUP', () => {
      if (!isStopping) reload(running, logger);
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

function reload(running: Running, logger: pino.Logger): void {
  running.side.reload();
  for (const file of [running.side.usersFile, running.admins]) {
    file?.reload().catch((error: unknown) => {
      logger.error({ file: file.path, err: String(error) }, 'file not reloaded');
    });
  }
}
