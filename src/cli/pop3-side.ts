import cluster from 'node:cluster';
import type { pino } from 'pino';
import type { Registry } from 'prom-client';
import type { OAuthVerifier } from '../auth/oauth/verifier.js';
import type { DaemonConfig } from '../config/config.js';
import { createMetricsRegistry, createPrimaryRegistry } from '../metrics/registry.js';
import type { MonitoredPop3, UserDirectory } from '../monitor/handlers.js';
import type { MonitorServer } from '../monitor/server.js';
import type { Pop3TlsOptions } from '../pop3/tls.js';
import { WorkerPool } from '../workers/primary.js';
import { usersOfWorkers, type EditableUsers } from '../workers/users.js';
import { listenPop3 } from './listen.js';
import { ClusterMonitoredPop3 } from '../cluster/monitor.js';
import type { ClusterConnection } from '../cluster/redis.js';
import { createLocalPop3, labelByNode, openCluster, type WorkerSettings } from './local-pop3.js';
import { openUsers, type UsersSource } from './users-source.js';
import type { Plan } from './plan.js';
import { encodeTls } from '../workers/state.js';
import type { Pop3Limits } from '../pop3/limits.js';

type Address = { readonly address: string; readonly family: string; readonly port: number };

/** What a SIGHUP changed that the POP3 servers take: absent means unchanged. */
export interface SideChanges {
  readonly limits?: Partial<Pop3Limits>;
  readonly logLevel?: string;
  readonly tls?: Pop3TlsOptions;
}

/**
 * The daemon's POP3 side, served in this process or by worker processes: what `serve()` starts,
 * shows the monitor and /metrics, reloads on SIGHUP and stops.
 */
export interface Pop3Side {
  /** What the monitor reads and steers: the server, or the pool of workers. */
  readonly pop3: MonitoredPop3;
  /** With `--cluster`: what the monitor reads and steers over every node (`pop3` on this one). */
  readonly monitored: MonitoredPop3;
  /** With `--cluster`: this node's name, the `node` label of every metric. */
  readonly nodeLabel: string | undefined;
  /** With `--cluster`: this process's connection (the maildrop leases of the monitor's own store). */
  readonly cluster?: ClusterConnection | undefined;
  readonly mailRoot: { root: string };
  /** The users as the monitor edits them; undefined: user changes are refused. */
  readonly users: UserDirectory | undefined;
  /** This process's users (a file, or a database): re-read on SIGHUP, closed at shutdown. */
  readonly usersFile: UsersSource;
  /** Open sessions, for the shutdown log line; undefined when the workers hold them. */
  readonly sessionCount: number | undefined;
  /** Listens (or forks the workers and waits until every one listens); resolves to the bound addresses. */
  start(): Promise<readonly Address[]>;
  /** What /metrics serves, the monitor's own counters included. */
  registry(monitor: MonitorServer | undefined): Pick<Registry, 'metrics' | 'contentType'>;
  /**
   * SIGHUP: the changed limits and log level, the certificates just read (and, with workers, their
   * users files); every process's authentication cache is emptied. This process's own logger level
   * is the caller's.
   */
  reload(changes: SideChanges): Promise<void>;
  /** Tells the open sessions to end, drops what is left after `graceMs`, and stops serving. */
  stop(graceMs: number): Promise<void>;
}

/** `--workers 1`: the POP3 server runs in this process, as a library user runs it. */
export async function singleProcess(
  config: DaemonConfig,
  plan: Plan,
  oauth: OAuthVerifier | undefined,
  tls: Pop3TlsOptions | undefined,
  logger: pino.Logger,
): Promise<Pop3Side> {
  const cluster = await openCluster(config, logger);
  const { users, store, pop3 } = await createLocalPop3(config, plan, oauth, tls, logger, undefined, cluster);
  return {
    pop3,
    monitored: overEveryNode(cluster, pop3, logger),
    nodeLabel: cluster?.nodeName,
    cluster,
    mailRoot: store,
    users: users.directory,
    usersFile: users,
    get sessionCount() {
      return pop3.connectionCount;
    },
    async start() {
      await listenPop3(pop3, config, plan, logger);
      return pop3.addresses();
    },
    registry: (monitor) => labelByNode(createMetricsRegistry(pop3, monitor), config),
    reload(changes) {
      if (changes.limits !== undefined) {
        pop3.setLimits(changes.limits);
        logger.info({ limits: changes.limits }, 'limits applied');
      }
      if (changes.tls !== undefined) pop3.setTls(changes.tls);
      pop3.flushAuthCache();
      return Promise.resolve();
    },
    async stop(graceMs) {
      await pop3.close({ graceMs });
      await cluster?.close();
    },
  };
}

/**
 * `--workers N` > 1: this process is the primary. It forks the POP3 workers (node:cluster), which
 * share the listening sockets, and keeps the users file that the monitor edits; workers re-read it.
 */
export async function workerProcesses(
  config: DaemonConfig,
  plan: Plan,
  live: { readonly config: DaemonConfig; readonly tls: Pop3TlsOptions | undefined },
  logger: pino.Logger,
): Promise<Pop3Side> {
  const usersFile = await openUsers(config, plan, undefined, logger);
  // The workers re-read the file too, quietly: this copy reports each change once.
  usersFile.watch();
  const pool = new WorkerPool({
    count: config.workers,
    limits: config.limits,
    root: config.maildir,
    logger,
    // A worker starts with the configuration and certificates in force now, never reads its own.
    settings: (): WorkerSettings => ({
      config: live.config,
      ...(live.tls === undefined ? {} : { tls: encodeTls(live.tls) }),
    }),
  });
  // The primary's own connection, for the monitor over every node (the workers each hold one).
  const redis = await openCluster(config, logger);
  return {
    pop3: pool,
    monitored: overEveryNode(redis, pool, logger),
    nodeLabel: redis?.nodeName,
    cluster: redis,
    mailRoot: pool,
    // A file's change is answered once every worker re-read it; a database's holds for all at once.
    users:
      usersFile.backend === 'passwd-file' && usersFile.directory !== undefined
        ? usersOfWorkers(usersFile.directory as EditableUsers, pool)
        : usersFile.directory,
    usersFile,
    sessionCount: undefined,
    start() {
      cluster.setupPrimary({ silent: false });
      return pool.start();
    },
    registry: (monitor) => pool.registry(labelByNode(createPrimaryRegistry(monitor), config)),
    reload: ({ tls, ...changes }) =>
      pool.reloadAll({ ...changes, ...(tls === undefined ? {} : { tls: encodeTls(tls) }) }),
    async stop(graceMs) {
      await pool.stop(graceMs);
      await redis?.close();
    },
  };
}

/** With `--cluster`: `local` wrapped so that the monitor sees and ends sessions on every node. */
function overEveryNode(
  cluster: ClusterConnection | undefined,
  local: MonitoredPop3,
  logger: pino.Logger,
): MonitoredPop3 {
  if (cluster === undefined) return local;
  const monitored = new ClusterMonitoredPop3(cluster, local, logger);
  cluster.beforeClose(() => monitored.close());
  return monitored;
}
