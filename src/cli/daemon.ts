import cluster from 'node:cluster';
import { resolve } from 'node:path';
import type { pino } from 'pino';
import { hashPassword } from '../auth/passwords/registry.js';
import { DEFAULT_MONITOR_LISTEN, type DaemonConfig } from '../config/config.js';
import { serveMetrics } from '../metrics/http.js';
import { serveWorker } from '../workers/worker.js';
import { AdminStore, DEFAULT_ADMIN, DEFAULT_ADMIN_TOKEN, TOKEN_SCHEME } from '../monitor/admins.js';
import { MonitorServer } from '../monitor/server.js';
import { createDemoFiles, ensureCredentialFile } from './demo.js';
import { createOAuthVerifier } from './oauth.js';
import { readCertificates } from './certificates.js';
import { listenAll } from './listen.js';
import { startWorkerPop3 } from './local-pop3.js';
import { singleProcess, workerProcesses } from './pop3-side.js';
import { planOf, refuseExposedDefaults } from './plan.js';

interface Closable {
  close(): unknown;
}

/**
 * Runs the daemon until SIGTERM or SIGINT; resolves to the exit code. Everything that could make
 * it refuse to start is checked before any file is created. With `workers` > 1 this process is
 * the primary: it keeps the monitor, the metrics and the files, and forks the POP3 workers
 * (node:cluster), which run {@link serveWorker}.
 */
export async function serve(config: DaemonConfig, logger: pino.Logger): Promise<number> {
  if (cluster.isWorker) return serveWorker(() => startWorkerPop3(config, logger));
  const plan = planOf(config);
  const { isDemo, usersPath, adminsPath, monitorExposed, isDefaultAdminFile } = plan;
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
  let monitor: MonitorServer | undefined;
  let admins: AdminStore | undefined;
  let addresses: readonly { address: string; family: string; port: number }[];
  try {
    addresses = await side.start();
    if (config.monitorPort !== undefined) {
      if (isDefaultAdminFile) {
        const field = await hashPassword(DEFAULT_ADMIN_TOKEN, TOKEN_SCHEME);
        if (await ensureCredentialFile(adminsPath, DEFAULT_ADMIN, field)) {
          logger.info({ file: adminsPath }, 'default admins file created');
        }
      }
      admins = new AdminStore(adminsPath, { logger });
      closables.push(admins);
      await admins.reload();
      admins.watch();
      if (await admins.isDefaultTokenValid()) {
        logger.warn(
          { admin: DEFAULT_ADMIN, file: adminsPath },
          'the monitor accepts the default admin token: replace it (poplarctl admins add, then delete root)',
        );
      }
      monitor = new MonitorServer({
        pop3: side.pop3,
        admins,
        users: side.users,
        mailRoot: side.mailRoot,
        logger: logger.child({ component: 'monitor' }),
        isExposed: monitorExposed.length > 0,
      });
      closables.push(monitor);
      await listenAll(
        monitor,
        config.monitorListen,
        config.monitorPort,
        config.monitorListen === DEFAULT_MONITOR_LISTEN,
        logger,
      );
    }
    if (config.metricsListen !== undefined) {
      const { server, address } = await serveMetrics(side.registry(monitor), config.metricsListen);
      closables.push({ close: () => new Promise((resolve) => server.close(resolve)) });
      logger.info({ address: address.address, port: address.port }, 'metrics listening');
    }
  } catch (error) {
    // Whatever is already open would keep the process alive.
    for (const c of closables.reverse()) await c.close();
    throw error;
  }
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
        for (const c of closables.slice(1)) if (c !== admins && c !== monitor) await c.close();
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
