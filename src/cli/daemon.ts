import cluster from 'node:cluster';
import { resolve } from 'node:path';
import type { pino } from 'pino';
import { PasswdFileAuthenticator } from '../auth/passwd-file.js';
import { hashPassword } from '../auth/passwords/registry.js';
import { DEFAULT_MONITOR_LISTEN, type DaemonConfig } from '../config/config.js';
import { serveMetrics } from '../metrics/http.js';
import { createMetricsRegistry, createPrimaryRegistry } from '../metrics/registry.js';
import { WorkerPool } from '../workers/primary.js';
import { usersOfWorkers } from '../workers/users.js';
import { serveWorker } from '../workers/worker.js';
import type { MonitoredPop3 } from '../monitor/handlers.js';
import { AdminStore, DEFAULT_ADMIN, DEFAULT_ADMIN_TOKEN, TOKEN_SCHEME } from '../monitor/admins.js';
import { MonitorServer } from '../monitor/server.js';
import { createDemoFiles, ensureCredentialFile } from './demo.js';
import { createOAuthVerifier } from './oauth.js';
import { readCertificates, reloadCertificates } from './certificates.js';
import { listenAll, listenPop3 } from './listen.js';
import { createLocalPop3, startWorkerPop3, type LocalPop3 } from './local-pop3.js';
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
  const closables: Closable[] = [];
  const isCluster = config.workers > 1;
  let local: LocalPop3 | undefined;
  let pool: WorkerPool | undefined;
  let users: PasswdFileAuthenticator;
  if (isCluster) {
    // The primary's copy of the users file is the one the monitor edits; workers re-read it.
    users = new PasswdFileAuthenticator(usersPath, { logger, scheme: config.passwordScheme });
    await users.reload();
    closables.push(users);
  } else {
    local = await createLocalPop3(config, plan, oauth, tls, logger);
    users = local.users;
    closables.push(users, { close: () => local?.pop3.close({ graceMs: 0 }) });
  }
  let monitor: MonitorServer | undefined;
  let admins: AdminStore | undefined;
  let addresses: readonly { address: string; family: string; port: number }[];
  try {
    if (local !== undefined) {
      await listenPop3(local.pop3, config, plan, logger);
      addresses = local.pop3.addresses();
    } else {
      cluster.setupPrimary({ silent: false });
      pool = new WorkerPool({ count: config.workers, limits: config.limits, root: config.maildir, logger });
      const started = pool;
      closables.push({ close: () => started.stop(0) });
      addresses = await pool.start();
    }
    const pop3: MonitoredPop3 = local?.pop3 ?? (pool as WorkerPool);
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
        pop3,
        admins,
        users: pool === undefined ? users : usersOfWorkers(users, pool),
        mailRoot: local?.store ?? (pool as WorkerPool),
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
      const registry =
        local !== undefined
          ? createMetricsRegistry(local.pop3, monitor)
          : (pool as WorkerPool).registry(createPrimaryRegistry(monitor));
      const { server, address } = await serveMetrics(registry, config.metricsListen);
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
      logger.info({ signal, sessions: local?.pop3.connectionCount }, 'shutting down');
      users.close();
      admins?.close();
      const stopping =
        local?.pop3.close({ graceMs: config.shutdownGraceMs }) ?? pool?.stop(config.shutdownGraceMs);
      void Promise.all([monitor?.close(), stopping]).then(async () => {
        for (const c of closables) if (c !== users && c !== admins && c !== monitor) await c.close();
        logger.info('stopped');
        resolve(0);
      });
    };
    const reload = (): void => {
      if (isStopping) return;
      if (local !== undefined) reloadCertificates(config, local.pop3, logger);
      pool?.reloadAll().catch((error: unknown) => {
        logger.error({ err: String(error) }, 'workers did not all reload');
      });
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
