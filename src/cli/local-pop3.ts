import type { pino } from 'pino';
import type { Registry } from 'prom-client';
import type { OAuthVerifier } from '../auth/oauth/verifier.js';
import { clusterCounters } from '../cluster/counters.js';
import { RedisMaildropLocks } from '../cluster/leases.js';
import { connectCluster, type ClusterConnection } from '../cluster/redis.js';
import type { DaemonConfig } from '../config/config.js';
import { MaildirStore } from '../mailstore/maildir/store.js';
import { FileUserLedger } from '../mailstore/maildir/ledger-file.js';
import { createServer, type Pop3Server, type Pop3ServerOptions } from '../pop3/server.js';
import type { Pop3TlsOptions } from '../pop3/tls.js';
import { createMetricsRegistry } from '../metrics/registry.js';
import type { Pop3Limits } from '../pop3/limits.js';
import { decodeTls, type TlsData, type WorkerState } from '../workers/state.js';
import { WorkerCounters } from '../workers/shared-limits.js';
import type { WorkerServer } from '../workers/worker.js';
import { withAppPasswordsOf } from './app-passwords.js';
import { listenPop3 } from './listen.js';
import { loadDecoySecret, sharedDecoySecret } from './decoy-secret.js';
import { createOAuthVerifier } from './oauth.js';
import { planOf, type Plan } from './plan.js';
import { dropPrivileges, resolveRunAs } from './privileges.js';
import { openUsers, type UsersSource } from './users-source.js';

/** A POP3 server in this process, with its users and store. */
export interface LocalPop3 {
  readonly users: UsersSource;
  readonly store: MaildirStore;
  readonly pop3: Pop3Server;
  /** With `--cluster`: this process's Redis connection (closed by whoever closes `pop3`, after it). */
  readonly cluster: ClusterConnection | undefined;
}

/**
 * With `--cluster`: this process's connection to the cluster's Redis, after its first attempt
 * (the daemon starts while Redis is down, and says so). Without: undefined.
 */
export async function openCluster(
  config: DaemonConfig,
  logger: pino.Logger,
): Promise<ClusterConnection | undefined> {
  if (config.cluster === undefined) return undefined;
  const cluster = connectCluster(
    { cluster: config.cluster, clusterPasswordFile: config.clusterPasswordFile, nodeName: config.nodeName },
    logger,
  );
  await cluster.settled();
  return cluster;
}

/** With `--cluster`, every metric carries `node="<nodeName>"` (prom-client's default labels). */
export function labelByNode<R extends Registry>(registry: R, config: DaemonConfig): R {
  if (config.cluster !== undefined) registry.setDefaultLabels({ node: config.nodeName });
  return registry;
}

/**
 * The engine on the users file (read, then watched) and the Maildir store, as the single process
 * and every worker build it. It does not listen yet.
 */
export async function createLocalPop3(
  config: DaemonConfig,
  plan: Plan,
  oauth: OAuthVerifier | undefined,
  tls: Pop3TlsOptions | undefined,
  logger: pino.Logger,
  counters?: Pop3ServerOptions['counters'],
  cluster?: ClusterConnection,
): Promise<LocalPop3> {
  // serve() has read it (and handed it to the workers); the fallback is for a caller that has not.
  const decoySecret = sharedDecoySecret() ?? (await loadDecoySecret(config.maildir, logger));
  const users = await openUsers(config, plan, oauth, logger, decoySecret);
  users.watch();
  const store = new MaildirStore({
    root: config.maildir,
    logger,
    blockingIo: config.blockingIo,
    lockTtlMs: config.lockTtl * 1000,
    // With --cluster the lease in Redis is the maildrop lock, alone (docs/scale-out.md says why).
    ...(cluster === undefined
      ? {}
      : { locks: new RedisMaildropLocks(cluster, { ttlMs: config.lockTtl * 1000, logger }) }),
  });
  // With --cluster the limits and the throttle count over every node, falling back to these.
  const shared = cluster === undefined ? counters : clusterCounters(cluster, counters, logger);
  const pop3 = createServer({
    authenticator: withAppPasswordsOf(users, store, config.policy, logger),
    store,
    limits: config.limits,
    logger,
    ...(tls === undefined ? {} : { tls }),
    allowCleartextLogin: config.allowCleartextLogin,
    decoySecret,
    proxyProtocolFrom: config.proxyProtocolFrom,
    // [policy] and each user's ledger in their maildir, shared by every worker and node.
    policy: config.policy,
    ledger: new FileUserLedger(() => store.root, { logger }),
    ...(config.hostname === undefined ? {} : { hostname: config.hostname }),
    ...(shared === undefined ? {} : { counters: shared }),
  });
  return { users, store, pop3, cluster };
}

/** What the primary hands a starting worker: its configuration and certificates in force now. */
export interface WorkerSettings {
  readonly config: DaemonConfig;
  readonly tls?: TlsData;
}

/**
 * A worker's POP3 server, built from the primary's state (its configuration, certificates, limits
 * and mail root as they are now); `listen()` listens on the sockets shared with the other workers.
 */
export async function startWorkerPop3(
  state: WorkerState,
  makeLogger: (config: DaemonConfig) => pino.Logger,
): Promise<WorkerServer> {
  const { config: started, tls: tlsData } = state.settings as WorkerSettings;
  const config = { ...started, limits: state.limits };
  const logger = makeLogger(config);
  const plan = planOf(config);
  const oauth = config.oauth === undefined ? undefined : await createOAuthVerifier(config.oauth, logger);
  const tls = tlsData === undefined ? undefined : decodeTls(tlsData);
  // Files only root may read were read by the primary; the worker switches before anything else:
  // the users file is read, and clients are served, as the account. The primary binds the ports
  // for this worker's listen.
  const runAs = await resolveRunAs(config);
  if (runAs !== undefined) dropPrivileges(runAs, logger);
  // Connection counts and the login throttle are the primary's, once for the machine.
  const counters = new WorkerCounters();
  const cluster = await openCluster(config, logger);
  const { users, store, pop3 } = await createLocalPop3(config, plan, oauth, tls, logger, counters, cluster);
  if (state.root !== config.maildir) {
    // Changed through the monitor since start: a store path only; the plan's files stay where they were.
    store.root = state.root;
    logger.info({ root: store.root }, 'mail root applied');
  }
  const changed = Object.keys(state.limits).filter(
    (k) => state.limits[k as keyof Pop3Limits] !== started.limits[k as keyof Pop3Limits],
  );
  if (changed.length > 0)
    logger.info(
      { limits: Object.fromEntries(changed.map((k) => [k, state.limits[k as keyof Pop3Limits]])) },
      'limits applied',
    );
  return {
    pop3,
    users,
    mailRoot: store,
    registry: labelByNode(createMetricsRegistry(pop3), config),
    setLogLevel: (level) => {
      logger.level = level;
    },
    listen: () => listenPop3(pop3, config, plan, logger),
    shutdownGraceMs: config.shutdownGraceMs,
    logger,
    ...(cluster === undefined ? {} : { closeAfter: () => cluster.close() }),
  };
}
