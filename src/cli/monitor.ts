import type { pino } from 'pino';
import { hashPassword } from '../auth/passwords/registry.js';
import { DEFAULT_MONITOR_LISTEN, formatHostPort, type DaemonConfig } from '../config/config.js';
import { serveMetrics } from '../metrics/http.js';
import type { DashboardMount } from './dashboard.js';
import { createBuildInfoRegistry } from '../metrics/registry.js';
import { AdminStore, DEFAULT_ADMIN, DEFAULT_ADMIN_TOKEN, TOKEN_SCHEME } from '../monitor/admins.js';
import type { ReloadReport } from '../monitor/handlers.js';
import { MonitorServer } from '../monitor/server.js';
import { userInfoHandler } from '../monitor/user-info.js';
import { FileUserLedger } from '../mailstore/maildir/ledger-file.js';
import { ensureGeneratedAdmin } from './admin-token.js';
import { appPasswordsForMonitor } from './app-passwords.js';
import { ensureCredentialFile } from './demo.js';
import { listenAll } from './listen.js';
import type { Plan } from './plan.js';
import type { Pop3Side } from './pop3-side.js';
import type { Closable } from './shutdown.js';
import { asFileError } from './start-errors.js';
import { uidlExtensions } from './uidl-admin.js';
import { version } from './version.js';

/**
 * The monitor on the admins file (when none was given: created with the default admin in demo
 * mode, with a random token otherwise), listening
 * on `monitorPort`; undefined when the monitor is off. What it opens is added to `opened` at once,
 * so that a failure later in the start can close it.
 */
export async function startMonitor(
  config: DaemonConfig,
  plan: Plan,
  side: Pop3Side,
  opened: Closable[],
  logger: pino.Logger,
  reload?: () => Promise<ReloadReport>,
): Promise<{ monitor: MonitorServer; admins: AdminStore } | undefined> {
  if (config.monitorPort === undefined) return undefined;
  const { adminsPath } = plan;
  if (plan.isDefaultAdminFile && !plan.isDemo) {
    const tokenPath = await ensureGeneratedAdmin(adminsPath).catch(asFileError('admins file', adminsPath));
    if (tokenPath !== undefined) {
      logger.warn(
        { admin: DEFAULT_ADMIN, file: adminsPath, tokenFile: tokenPath },
        `admins file created with a random token for ${DEFAULT_ADMIN}, shown once in ${tokenPath} (mode 0600): ` +
          `use it with poplarctl --token-file ${tokenPath}, then move or delete that file`,
      );
    }
  } else if (plan.isDefaultAdminFile) {
    const field = await hashPassword(DEFAULT_ADMIN_TOKEN, TOKEN_SCHEME);
    const isCreated = await ensureCredentialFile(adminsPath, DEFAULT_ADMIN, field).catch(
      asFileError('admins file', adminsPath),
    );
    if (isCreated) {
      logger.info({ file: adminsPath }, 'default admins file created');
    }
  }
  const admins = new AdminStore(adminsPath, { logger });
  opened.push(admins);
  await admins.reload().catch(asFileError('admins file', adminsPath));
  admins.watch();
  const holder = await admins.verify(DEFAULT_ADMIN_TOKEN);
  if (holder !== undefined && !plan.isDemo) {
    // Made by an older Poplar, or by hand: the token is public, so the monitor refuses it here.
    logger.warn(
      { admin: holder, file: adminsPath },
      `admin ${holder} in ${adminsPath} holds the public demo token, which the monitor refuses outside demo mode: ` +
        (plan.isDefaultAdminFile
          ? `stop Poplar and delete ${adminsPath} to have a random token generated at the next start, or `
          : '') +
        `delete ${holder} with poplarctl admins del and another admin's token`,
    );
  } else if (holder !== undefined) {
    logger.warn(
      { admin: DEFAULT_ADMIN, file: adminsPath },
      'the monitor accepts the default admin token: replace it (poplarctl admins add, then delete root)',
    );
  }
  const uidl = uidlExtensions(config, side, logger);
  const appPasswords = appPasswordsForMonitor(side.usersFile, side.users, side.mailRoot, logger);
  const monitor = new MonitorServer({
    pop3: side.monitored,
    admins,
    ...(appPasswords.users === undefined ? {} : { users: appPasswords.users }),
    mailRoot: side.mailRoot,
    logger: logger.child({ component: 'monitor' }),
    refusesDefaultToken: !plan.isDemo || plan.monitorExposed.length > 0,
    ...(reload === undefined ? {} : { reload }),
    extensions: {
      config: { ...uidl.config, ...appPasswords.extensions.config },
      get: {
        ...uidl.get,
        ...appPasswords.extensions.get,
        // The ledger files in the maildirs: this process reads them, whoever served the sessions.
        userInfo: userInfoHandler({
          authenticator: side.usersFile.authenticator,
          ledger: new FileUserLedger(() => side.mailRoot.root, { logger }),
          policy: config.policy,
        }),
      },
    },
  });
  opened.push(monitor);
  const areDefaults = config.monitorListen === DEFAULT_MONITOR_LISTEN;
  await listenAll(monitor, config.monitorListen, config.monitorPort, areDefaults, logger, 'the monitor');
  return { monitor, admins };
}

/** Connections the metrics listener holds at once when it serves the dashboard too. */
const DASHBOARD_MAX_CONNECTIONS = 64;

/**
 * The metrics listener on `listen`: GET /metrics (the POP3 side's counters, the monitor's, and
 * `poplar_build_info`) and GET /healthz (200 while this process answers and, with workers, every
 * worker answers a stats request).
 */
export async function startMetrics(
  listen: { readonly host: string; readonly port: number },
  side: Pop3Side,
  monitor: MonitorServer | undefined,
  logger: pino.Logger,
  dashboard?: DashboardMount,
): Promise<Closable> {
  const counters = side.registry(monitor);
  const buildInfo = createBuildInfoRegistry(version());
  const registry = {
    contentType: counters.contentType,
    metrics: async () => `${await counters.metrics()}\n${await buildInfo.metrics()}`,
  };
  const { address, close } = await serveMetrics(registry, {
    ...listen,
    ...(dashboard === undefined
      ? {}
      : {
          fallback: dashboard.fallback,
          ...(dashboard.tls === undefined ? {} : { tls: dashboard.tls }),
          // Each open page holds an event stream and a connection or two for its requests.
          maxConnections: DASHBOARD_MAX_CONNECTIONS,
        }),
    isHealthy: async () => {
      await side.pop3.refresh?.();
      return true;
    },
  }).catch((error: unknown) => {
    dashboard?.close();
    throw new Error(
      `cannot listen for metrics on ${listen.host} port ${listen.port}: ${(error as Error).message}`,
      { cause: error },
    );
  });
  logger.info({ address: address.address, port: address.port }, 'metrics listening');
  if (dashboard !== undefined)
    dashboard.logger.info(
      { url: `${dashboard.scheme}://${formatHostPort(address.address, address.port)}/` },
      'dashboard on: log in with a monitor admin name and token',
    );
  return {
    close: () => {
      dashboard?.close();
      return close();
    },
  };
}
