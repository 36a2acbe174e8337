import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { PasswdFileAuthenticator } from '../auth/passwd-file.js';
import { StaticAuthenticator } from '../auth/static.js';
import type { Authenticator } from '../auth/types.js';
import { readConfigFile, resolveConfig, type ConfigLayer, type DaemonConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { MaildirStore } from '../mailstore/maildir/store.js';
import { createServer, type Pop3Server } from '../pop3/server.js';
import { DEMO_PASSWORD, DEMO_USER, ensureDemoMailbox } from './demo.js';
import { hashPasswordCommand } from './hash-password.js';
import { isLoopbackAddress } from './loopback.js';

const USAGE = `Usage: poplar [options]
       poplar hash-password [--scheme SCHEME] [--user NAME]   (password on stdin)

Serves Maildir mailboxes (<maildir>/<user>/{new,cur,tmp}) over POP3.

Options:
  -p, --port PORT       POP3 port (default 1100)
  -m, --maildir DIR     mail root (default ./directories/)
      --listen ADDR     address to listen on; repeat for more (IPv4 or IPv6).
                        Default: 127.0.0.1 and ::1 in demo mode, else 0.0.0.0 and ::
      --users FILE      users file, Dovecot passwd-file form (user:{SCHEME}hash).
                        Without it Poplar runs in demo mode: user foo, password bar,
                        loopback only
      --config FILE     TOML config file; flags win over it
      --log-level LEVEL fatal, error, warn, info (default), debug, trace or silent
  -h, --help            show this help
  -v, --version         show the version
`;

/** The version in package.json, found by walking up from this file (it runs from src/ or build/src/). */
function version(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'poplar' && pkg.version !== undefined) return pkg.version;
    } catch {
      // Not here: look further up.
    }
  }
  return 'unknown';
}

function flagsLayer(argv: string[]): {
  layer: ConfigLayer;
  config?: string;
  help: boolean;
  version: boolean;
} {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', short: 'p' },
      maildir: { type: 'string', short: 'm' },
      listen: { type: 'string', multiple: true },
      users: { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const layer: ConfigLayer = {};
  if (values.port !== undefined) {
    if (!/^[0-9]{1,5}$/.test(values.port)) throw new ConfigError(`invalid port "${values.port}"`);
    layer.port = Number(values.port);
  }
  if (values.maildir !== undefined) layer.maildir = values.maildir;
  if (values.listen !== undefined) layer.listen = values.listen;
  if (values.users !== undefined) layer.users = values.users;
  if (values['log-level'] !== undefined) layer.logLevel = values['log-level'];
  return {
    layer,
    ...(values.config === undefined ? {} : { config: values.config }),
    help: values.help === true,
    version: values.version === true,
  };
}

function makeLogger(level: string): pino.Logger {
  const options = { level, base: { pid: process.pid } };
  return process.stdout.isTTY
    ? pino(options, pretty({ colorize: true, translateTime: 'SYS:standard' }))
    : pino(options);
}

/** The daemon. Resolves with the exit code once the server has stopped. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'hash-password') return hashPasswordCommand(argv.slice(1));
  let config: DaemonConfig;
  try {
    const flags = flagsLayer(argv);
    if (flags.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (flags.version) {
      process.stdout.write(`poplar ${version()}\n`);
      return 0;
    }
    const fileLayer = flags.config === undefined ? {} : await readConfigFile(flags.config);
    config = resolveConfig(fileLayer, flags.layer);
  } catch (error) {
    process.stderr.write(`poplar: ${(error as Error).message}\n${error instanceof ConfigError ? '' : USAGE}`);
    return 2;
  }
  const logger = makeLogger(config.logLevel);
  try {
    return await serve(config, logger);
  } catch (error) {
    logger.fatal({ err: (error as Error).message }, 'poplar could not start');
    process.stderr.write(`poplar: ${(error as Error).message}\n`);
    return 1;
  }
}

async function serve(config: DaemonConfig, logger: pino.Logger): Promise<number> {
  const isDemo = config.users === undefined;
  const listen = config.listen.length > 0 ? config.listen : isDemo ? ['127.0.0.1', '::1'] : ['0.0.0.0', '::'];
  let authenticator: Authenticator;
  let passwdFile: PasswdFileAuthenticator | undefined;
  if (config.users === undefined) {
    const exposed = listen.filter((a) => !isLoopbackAddress(a));
    if (exposed.length > 0) {
      throw new Error(
        `refusing to listen on ${exposed.join(', ')} with the demo user ${DEMO_USER}:${DEMO_PASSWORD}; ` +
          'give a users file with --users, or listen on loopback only',
      );
    }
    logger.warn(
      { user: DEMO_USER },
      `demo mode: no users file, serving the demo user ${DEMO_USER} (password ${DEMO_PASSWORD}) on loopback only`,
    );
    authenticator = new StaticAuthenticator({ [DEMO_USER]: DEMO_PASSWORD });
    if (await ensureDemoMailbox(config.maildir))
      logger.info({ maildir: config.maildir }, 'demo mailbox created');
  } else {
    passwdFile = new PasswdFileAuthenticator(config.users, { logger: logger });
    await passwdFile.reload();
    passwdFile.watch();
    authenticator = passwdFile;
  }
  const store = new MaildirStore({ root: config.maildir, logger: logger });
  const server = createServer({
    authenticator,
    store,
    limits: config.limits,
    logger: logger,
    ...(config.hostname === undefined ? {} : { hostname: config.hostname }),
  });
  try {
    await listenAll(server, listen, config.port, config.listen.length === 0, logger);
  } catch (error) {
    // Listeners already open and the users-file watcher would keep the process alive.
    passwdFile?.close();
    await server.close({ graceMs: 0 });
    throw error;
  }
  logger.info({ addresses: server.addresses(), maildir: store.root, demo: isDemo }, 'poplar started');

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
      logger.info({ signal, sessions: server.connectionCount }, 'shutting down');
      passwdFile?.close();
      void server.close({ graceMs: config.shutdownGraceMs }).then(() => {
        logger.info('stopped');
        resolve(0);
      });
    };
    const reload = (): void => {
      if (isStopping) return;
      passwdFile?.reload().catch((error: unknown) => {
        logger.error({ err: String(error) }, 'users file not reloaded');
      });
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
  server: Pop3Server,
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
