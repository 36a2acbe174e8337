import { join } from 'node:path';
import type { pino } from 'pino';
import { PasswdFileAuthenticator } from '../auth/passwd-file.js';
import { hashPassword } from '../auth/passwords.js';
import { DEFAULT_MONITOR_LISTEN, type DaemonConfig } from '../config/config.js';
import { MaildirStore } from '../mailstore/maildir/store.js';
import { serveMetrics } from '../metrics/http.js';
import { createMetricsRegistry } from '../metrics/registry.js';
import { AdminStore, DEFAULT_ADMIN, DEFAULT_ADMIN_TOKEN, TOKEN_SCHEME } from '../monitor/admins.js';
import { MonitorServer } from '../monitor/server.js';
import { createServer } from '../pop3/server.js';
import { TlsContexts, type Pop3TlsOptions } from '../pop3/tls.js';
import { readFile } from 'node:fs/promises';
import {
  DEFAULT_ADMINS_FILE,
  DEMO_PASSWORD,
  DEMO_USER,
  DEMO_USERS_FILE,
  ensureCredentialFile,
  ensureDemoMailbox,
  isCredentialValid,
  isSecretAccepted,
} from './demo.js';
import { isLoopbackAddress } from '../loopback.js';
import { createOAuthVerifier } from './oauth.js';

interface Closable {
  close(): unknown;
}

/**
 * Runs the daemon until SIGTERM or SIGINT; resolves to the exit code. Everything that could make
 * it refuse to start is checked before any file is created.
 */
export async function serve(config: DaemonConfig, logger: pino.Logger): Promise<number> {
  const isDemo = config.users === undefined;
  const usersPath = config.users ?? join(config.maildir, DEMO_USERS_FILE);
  const adminsPath = config.admins ?? join(config.maildir, DEFAULT_ADMINS_FILE);
  const listen = config.listen.length > 0 ? config.listen : isDemo ? ['127.0.0.1', '::1'] : ['0.0.0.0', '::'];
  const isMonitorOn = config.monitorPort !== undefined;

  // Demo credentials are only ever served on loopback: the demo user's password, and the
  // default admin token, may not be reachable from elsewhere.
  const exposed = listen.filter((a) => !isLoopbackAddress(a));
  if (isDemo && exposed.length > 0 && (await isCredentialValid(usersPath, DEMO_USER, DEMO_PASSWORD))) {
    throw new Error(
      `refusing to listen on ${exposed.join(', ')} with the demo user ${DEMO_USER}:${DEMO_PASSWORD}; ` +
        'give a users file with --users, or listen on loopback only',
    );
  }
  const monitorExposed = isMonitorOn ? config.monitorListen.filter((a) => !isLoopbackAddress(a)) : [];
  const isDefaultAdminFile = config.admins === undefined;
  if (monitorExposed.length > 0 && (await isSecretAccepted(adminsPath, DEFAULT_ADMIN_TOKEN))) {
    throw new Error(
      `refusing to expose the monitor on ${monitorExposed.join(', ')} while the default admin token is valid; ` +
        'give an admins file with --admins, or keep the monitor on loopback',
    );
  }

  // Bearer tokens log in users of the users file only: a token never creates a mailbox.
  const oauth = config.oauth === undefined ? undefined : await createOAuthVerifier(config.oauth, logger);

  // Before anything is created or watched: a bad certificate must end the process at once.
  const tls = await readCertificates(config);

  if (isDemo) {
    if (
      await ensureCredentialFile(
        usersPath,
        DEMO_USER,
        await hashPassword(DEMO_PASSWORD, config.passwordScheme),
      )
    ) {
      logger.info({ file: usersPath }, 'demo users file created');
    }
    logger.warn(
      { user: DEMO_USER, file: usersPath },
      `demo mode: no users file given; users are kept in ${usersPath}, with the demo user ${DEMO_USER} ` +
        `(password ${DEMO_PASSWORD}), served on loopback only`,
    );
    if (await ensureDemoMailbox(config.maildir))
      logger.info({ maildir: config.maildir }, 'demo mailbox created');
  }
  const closables: Closable[] = [];
  const users = new PasswdFileAuthenticator(usersPath, {
    logger,
    scheme: config.passwordScheme,
    ...(oauth === undefined ? {} : { oauth }),
  });
  closables.push(users);
  await users.reload();
  users.watch();

  const store = new MaildirStore({ root: config.maildir, logger });
  const pop3 = createServer({
    authenticator: users,
    store,
    limits: config.limits,
    logger,
    ...(tls === undefined ? {} : { tls }),
    allowCleartextLogin: config.allowCleartextLogin,
    ...(config.hostname === undefined ? {} : { hostname: config.hostname }),
  });
  let monitor: MonitorServer | undefined;
  let admins: AdminStore | undefined;
  try {
    closables.push({ close: () => pop3.close({ graceMs: 0 }) });
    await listenAll(pop3, listen, config.port, config.listen.length === 0, logger);
    if (config.tlsPort !== undefined) {
      const tlsPort = config.tlsPort;
      await listenAll(
        { listen: (o) => pop3.listen({ ...o, tls: true }) },
        listen,
        tlsPort,
        config.listen.length === 0,
        logger,
      );
    }
    if (isMonitorOn) {
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
        users,
        mailRoot: store,
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
      const registry = createMetricsRegistry(pop3, monitor);
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
      addresses: pop3.addresses(),
      monitor: monitor?.addresses() ?? [],
      maildir: store.root,
      demo: isDemo,
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
      logger.info({ signal, sessions: pop3.connectionCount }, 'shutting down');
      users.close();
      admins?.close();
      void Promise.all([monitor?.close(), pop3.close({ graceMs: config.shutdownGraceMs })]).then(async () => {
        for (const c of closables) if (c !== users && c !== admins && c !== monitor) await c.close();
        logger.info('stopped');
        resolve(0);
      });
    };
    const reload = (): void => {
      if (isStopping) return;
      if (tls !== undefined) {
        readCertificates(config).then(
          (fresh) => {
            if (fresh !== undefined) pop3.setTls(fresh);
          },
          (error: unknown) => {
            logger.error({ err: String(error) }, 'certificates not reloaded; the old ones stay in use');
          },
        );
      }
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

/**
 * Listens on every address. When the addresses are the defaults, one that this machine cannot
 * use (no IPv6, say) is skipped with a warning; an address the operator named must work.
 */
async function listenAll(
  server: { listen(options: { host: string; port: number }): Promise<unknown> },
  addresses: readonly string[],
  port: number,
  areDefaults: boolean,
  logger: pino.Logger,
): Promise<void> {
  for (const host of addresses) {
    try {
      await server.listen({ host, port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (areDefaults && host.includes(':') && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
        logger.warn({ address: host, err: code }, 'IPv6 not available, skipped');
        continue;
      }
      throw new Error(`cannot listen on ${host} port ${port}: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** Reads the configured PEM files (at start and on SIGHUP); undefined when TLS is not configured. */
async function readCertificates(config: DaemonConfig): Promise<Pop3TlsOptions | undefined> {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const pair = async (cert: string, key: string): Promise<{ cert: Buffer; key: Buffer }> => {
    let certificate: { cert: Buffer; key: Buffer };
    try {
      certificate = { cert: await readFile(cert), key: await readFile(key) };
    } catch (error) {
      throw new Error(`cannot read TLS certificate or key: ${(error as Error).message}`, { cause: error });
    }
    // Each pair is checked on its own, so that the message names the files at fault (an SNI
    // pair's, not the default's), and here rather than inside the server.
    try {
      new TlsContexts(certificate);
    } catch (error) {
      throw new Error(`unusable TLS certificate or key (${cert}, ${key}): ${(error as Error).message}`, {
        cause: error,
      });
    }
    return certificate;
  };
  const sni: Record<string, { cert: Buffer; key: Buffer }> = {};
  for (const [name, files] of Object.entries(config.sni)) sni[name] = await pair(files.cert, files.key);
  return { ...(await pair(config.tlsCert, config.tlsKey)), sni };
}
