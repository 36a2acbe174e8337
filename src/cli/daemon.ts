import { resolve } from 'node:path';
import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import { PasswdFileAuthenticator } from '../auth/passwd-file.js';
import { loadDecoySecret } from './decoy-secret.js';
import { createDemoFiles } from './demo.js';
import { mountDashboard } from './dashboard.js';
import { startMetrics, startMonitor } from './monitor.js';
import { singleProcess, workerProcesses } from './pop3-side.js';
import { preflight } from './preflight.js';
import { asUser, checkAccess, dropPrivileges, warnIfRoot } from './privileges.js';
import { LiveConfig, reloader, type Reloadable } from './reload.js';
import { closeAll, untilStopped, type Closable } from './shutdown.js';
import { asFileError } from './start-errors.js';
import { version } from './version.js';

/**
 * Runs the daemon until SIGTERM or SIGINT; resolves to the exit code. Everything that could make
 * it refuse to start is checked before any file is created. With `workers` > 1 this process is
 * the primary: it keeps the monitor, the metrics and the files, and forks the POP3 workers
 * (node:cluster), which run `workerMain` with the configuration this process hands them. SIGHUP
 * reloads what `reread` reads (the flags and the TOML file).
 */
export async function serve(
  config: DaemonConfig,
  logger: pino.Logger,
  reread: () => Promise<DaemonConfig> = () => Promise.resolve(config),
): Promise<number> {
  const { plan, runAs, oauth, tls } = await preflight(config, logger);
  if (plan.isDemo)
    await asUser(runAs, () =>
      createDemoFiles(plan.usersPath, config.maildir, config.passwordScheme, logger),
    ).catch(asFileError('users file', plan.usersPath));

  // The users file is read first, so that a start that fails on it creates nothing; then the decoy
  // secret is read, or made as the account, for this process and its workers (decoy-secret.ts).
  if (!plan.isUserdb)
    await new PasswdFileAuthenticator(plan.usersPath)
      .reload()
      .catch(asFileError('users file', plan.usersPath));
  await asUser(runAs, () => loadDecoySecret(config.maildir, logger));
  const live = new LiveConfig(config, tls);
  const side =
    config.workers > 1
      ? await workerProcesses(config, plan, live, logger)
      : await singleProcess(config, plan, oauth, tls, logger);
  const opened: Closable[] = [
    {
      close: async () => {
        await side.stop(0);
        side.usersFile.close();
      },
    },
  ];
  // What SIGHUP and the monitor's reload touch; the admins file is there once the monitor started.
  const reloadable: { side: Reloadable['side']; admins: Reloadable['admins'] } = { side, admins: undefined };
  const reload = reloader(reloadable, live, reread, logger);
  let addresses, endpoints;
  let metrics: Closable | undefined;
  try {
    // The POP3 ports are bound as root (with workers, by this process for them; the workers
    // switched before they listened); then this process switches before the monitor, /metrics
    // and the admins file, so that nothing is served or created as root.
    addresses = await side.start();
    if (runAs === undefined) warnIfRoot(runAs, plan, logger);
    else {
      dropPrivileges(runAs, logger);
      await checkAccess(config, plan, runAs, logger);
    }
    endpoints = await startMonitor(config, plan, side, opened, logger, async () => {
      const changes = await reload();
      if (changes === undefined) throw new Error('configuration not reloaded; the old one stays in use');
      return changes;
    });
    reloadable.admins = endpoints?.admins;
    if (config.metricsListen !== undefined) {
      const dashboard = await mountDashboard({
        config,
        plan,
        side,
        admins: endpoints?.admins,
        tls: () => live.tls,
        logger,
        addresses,
      });
      metrics = await startMetrics(config.metricsListen, side, endpoints?.monitor, logger, dashboard);
      opened.push(metrics);
    }
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
  const { monitor, admins } = endpoints ?? {};
  logger.info(
    {
      version: version(),
      addresses,
      monitor: monitor?.addresses() ?? [],
      maildir: resolve(config.maildir),
      demo: plan.isDemo,
      workers: config.workers,
      ...(runAs === undefined ? {} : { user: runAs.user, group: runAs.group }),
    },
    'poplar started',
  );
  return untilStopped({ side, monitor, admins, metrics }, live, reload, logger);
}
