import cluster from 'node:cluster';
import { resolve } from 'node:path';
import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import { serveWorker } from '../workers/worker.js';
import { createDemoFiles } from './demo.js';
import { createOAuthVerifier } from './oauth.js';
import { readCertificates } from './certificates.js';
import { startWorkerPop3 } from './local-pop3.js';
import { startMetrics, startMonitor } from './monitor.js';
import { singleProcess, workerProcesses } from './pop3-side.js';
import { closeAll, type Closable } from './shutdown.js';
import { planOf, refuseExposedDefaults } from './plan.js';

/**
 * Runs the daemon until SIGTERM or SIGINT; resolves to the exit code. Everything that could make
 * it refuse to start is checked before any file is created. With `workers` > 1 this process is
 * the primary: it keeps the monitor, the metrics and the files, and forks the POP3 workers
 * (node:cluster), which run {@link serveWorker}.
 */
export async function serve(config: DaemonConfig, logger: pino.Logger): Promise<number> {
  if (cluster.isWorker) return serveWorker(() => startWorkerPop3(config, logger));
  const plan = planOf(config);
  const { isDemo, usersPath } = plan;
  await refuseExposedDefaults(plan);

  // Bearer tokens log in users of the users file only: a token never creates a mailbox.
  const oauth = config.oauth === undefined ? undefined : await createOAuthVerifier(config.oauth, logger);

  // Before anything is created or watched: a bad certificate must end the process at once.
  const tls = await readCertificates(config);

  if (isDemo) await createDemoFiles(usersPath, config.maildir, config.passwordScheme, logger);
  const side =
    config.workers > 1
      ? await workerProcesses(config, plan, logger)
      : await singleProcess(config, plan, oauth, tls, logger);
  const closables: Closable[] = [
    {
      close: async () => {
        await side.stop(0);
        side.usersFile.close();
      },
    },
  ];
  const users = side.usersFile;
  let addresses, endpoints;
  let metrics: Closable | undefined;
  try {
    addresses = await side.start();
    endpoints = await startMonitor(config, plan, side, closables, logger);
    if (config.metricsListen !== undefined) {
      metrics = await startMetrics(config.metricsListen, side, endpoints?.monitor, logger);
      closables.push(metrics);
    }
  } catch (error) {
    await closeAll(closables);
    throw error;
  }
  const { monitor, admins } = endpoints ?? {};
  logger.info(
    {
      addresses,
      monitor: monitor?.addresses() ?? [],
      maildir: resolve(config.maildir),
      demo: isDemo,
      workers: config.workers,
    },
    'poplar started',
  );

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
      logger.info({ signal, sessions: side.sessionCount }, 'shutting down');
      users.close();
      admins?.close();
      void Promise.all([monitor?.close(), side.stop(config.shutdownGraceMs)]).then(async () => {
        await metrics?.close();
        logger.info('stopped');
        resolve(0);
      });
    };
    const reload = (): void => {
      if (isStopping) return;
      side.reload();
      for (const file of [users, admins]) {
        file?.reload().catch((error: unknown) => {
          logger.error({ file: file.path, err: String(error) }, 'file not reloaded');
        });
      }
    };
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
    process.on('SIGHUP', reload);
  });
}
