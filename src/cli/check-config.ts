import { access } from 'node:fs/promises';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { DaemonConfig } from '../config/config.js';
import { connectCluster, redactedUrl } from '../cluster/redis.js';
import { silentLogger } from '../log.js';
import { AdminStore } from '../monitor/admins.js';
import { openUsers } from './users-source.js';
import { textLine } from './logger.js';
import { preflight } from './preflight.js';
import { printConfig } from './print-config.js';
import { version } from './version.js';

/**
 * Reads the flags and the TOML file they name, as the daemon does: the configuration, or the exit
 * code after the error was written (2 for a bad flag or setting, 0 after --help or --version).
 */
export type ConfigReader = (argv: string[]) => Promise<DaemonConfig | number>;

/** The warnings (and errors) of a command, one readable line each on stderr; stdout is its output. */
export function commandLogger(level: string): pino.Logger {
  const quiet = ['fatal', 'error', 'silent'].includes(level) ? level : 'warn';
  return pino(
    { level: quiet, base: {} },
    pretty({
      destination: 2,
      colorize: false,
      hideObject: true,
      ignore: 'time',
      messageFormat: (log, messageKey) => textLine(log, messageKey),
    }),
  );
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * `poplar check-config [the daemon's flags]`: every check the daemon makes at start (the same
 * code: `preflight`, then the users and admins files read as the daemon reads them), creating and
 * binding nothing; then the effective configuration on stdout (see {@link printConfig}). Exit
 * status as the daemon's at start: 2 for a bad flag or setting, 1 when a start-up check fails,
 * each with the same `poplar: ...` line; 0 when the daemon would start.
 */
export async function checkConfigCommand(argv: string[], readConfig: ConfigReader): Promise<number> {
  const config = await readConfig(argv);
  if (typeof config === 'number') return config;
  const logger = commandLogger(config.logLevel);
  try {
    const { plan, oauth } = await preflight(config, logger);
    // Files the daemon would create at start (demo mode's users, the default admins) may be missing.
    if (!plan.isDemo || (await exists(plan.usersPath))) {
      const users = await openUsers(config, plan, oauth, logger);
      try {
        // A database is asked a query now: it must answer, as the first login would need it to.
        await users.check().catch((error: unknown) => {
          throw new Error(
            `users: ${users.backend} ${users.path} does not answer: ${(error as Error).message}`,
          );
        });
        if (users.backend !== 'passwd-file')
          process.stderr.write(`poplar: users: ${users.backend} ${users.path} answers\n`);
      } finally {
        users.close();
      }
    }
    if (plan.isMonitorOn && (!plan.isDefaultAdminFile || (await exists(plan.adminsPath)))) {
      const admins = new AdminStore(plan.adminsPath, { logger });
      await admins.reload();
      admins.close();
    }
    if (config.cluster !== undefined)
      process.stderr.write(`poplar: ${await clusterAnswer(config, config.cluster)}\n`);
  } catch (error) {
    process.stderr.write(`poplar: ${(error as Error).message}\n`);
    return 1;
  }
  process.stdout.write(printConfig(config, `poplar ${version()}: the effective configuration`));
  return 0;
}

/**
 * Whether the cluster's Redis answers a PING now. Not an error either way: the daemon starts while
 * Redis is down (an unreadable password file is one: it throws, as at the daemon's start).
 */
async function clusterAnswer(config: DaemonConfig, url: string): Promise<string> {
  const cluster = connectCluster(
    { cluster: url, clusterPasswordFile: config.clusterPasswordFile, nodeName: config.nodeName },
    silentLogger,
  );
  try {
    await cluster.settled();
    await cluster.ping();
    return `the cluster at ${redactedUrl(url)} answers (this node: ${config.nodeName})`;
  } catch (error) {
    return `warning: the cluster at ${redactedUrl(url)} does not answer (${(error as Error).message}); the daemon would start and count on this node alone until it does`;
  } finally {
    await cluster.close();
  }
}
