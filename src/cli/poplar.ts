import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { readConfigFile, resolveConfig, type ConfigLayer, type DaemonConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { serve } from './daemon.js';
import { hashPasswordCommand } from './hash-password.js';

const USAGE = `Usage: poplar [options]
       poplar hash-password [--scheme SCHEME] [--user NAME]   (password on stdin)

Serves Maildir mailboxes (<maildir>/<user>/{new,cur,tmp}) over POP3.

Options:
  -p, --port PORT       POP3 port (default 1100)
  -m, --maildir DIR     mail root (default ./directories/)
      --listen ADDR     address to listen on; repeat for more (IPv4 or IPv6).
                        Default: 127.0.0.1 and ::1 in demo mode, else 0.0.0.0 and ::
      --users FILE      users file, Dovecot passwd-file form (user:{SCHEME}hash).
                        Without it Poplar runs in demo mode: users in
                        <maildir>/.poplar-users, starting with foo (password bar),
                        POP3 on loopback only while that password works
      --monitor-port PORT   monitor protocol port (default 1081)
      --monitor-listen ADDR address for the monitor; repeat for more
                        (default 127.0.0.1 and ::1)
      --no-monitor      run without the monitor
      --admins FILE     admins file for the monitor (name:{SCHEME}hash). Without it:
                        <maildir>/.poplar-admins, created with the admin root and the
                        token 123456789abcdef1 (monitor on loopback only)
      --metrics-listen ADDR:PORT
                        serve Prometheus metrics at http://ADDR:PORT/metrics
      --tls-cert FILE   PEM certificate (chain): offers STLS, and POP3S with --tls-port
      --tls-key FILE    PEM private key for it
      --tls-port PORT   implicit TLS port (POP3S, conventionally 995)
      --allow-cleartext-login
                        allow USER/PASS and SASL PLAIN/LOGIN on unencrypted connections
                        from non-loopback addresses (refused by default)
      --password-scheme SCHEME
                        how passwords set at run time are hashed (default PBKDF2;
                        SCRAM-SHA-256 lets users log in with SCRAM)
      --workers N       POP3 worker processes (default: one per CPU; 1: a single process)
      --no-blocking-io  never block on file reads (for maildirs on network filesystems)
      --user NAME       started as root: bind the ports, then run every process as NAME
      --group NAME      with --user: the group to run as (default: NAME's own group)
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

/** Flags that take a number: `-p -5` is the value -5 (refused as a port), not a missing value. */
const NUMBER_FLAGS = new Set(['-p', '--port', '--monitor-port', '--tls-port', '--workers']);

function withNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    if (NUMBER_FLAGS.has(arg) && next !== undefined && /^-[0-9]/.test(next)) {
      out.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function flagsLayer(argv: string[]): {
  layer: ConfigLayer;
  config?: string;
  help: boolean;
  version: boolean;
} {
  const { values } = parseArgs({
    args: withNegativeValues(argv),
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', short: 'p' },
      maildir: { type: 'string', short: 'm' },
      listen: { type: 'string', multiple: true },
      users: { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      'monitor-port': { type: 'string' },
      'monitor-listen': { type: 'string', multiple: true },
      'no-monitor': { type: 'boolean' },
      admins: { type: 'string' },
      'metrics-listen': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-port': { type: 'string' },
      'allow-cleartext-login': { type: 'boolean' },
      'password-scheme': { type: 'string' },
      workers: { type: 'string' },
      'no-blocking-io': { type: 'boolean' },
      user: { type: 'string' },
      group: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const layer: ConfigLayer = {};
  const port = (text: string | undefined, flag: string): number | undefined => {
    if (text === undefined) return undefined;
    if (!/^[0-9]{1,5}$/.test(text)) throw new ConfigError(`invalid ${flag} "${text}"`);
    return Number(text);
  };
  const pop3Port = port(values.port, 'port');
  if (pop3Port !== undefined) layer.port = pop3Port;
  const monitorPort = port(values['monitor-port'], 'monitor port');
  if (monitorPort !== undefined) layer.monitorPort = monitorPort;
  if (values['no-monitor'] === true) layer.monitorPort = false;
  if (values['monitor-listen'] !== undefined) layer.monitorListen = values['monitor-listen'];
  if (values.admins !== undefined) layer.admins = values.admins;
  if (values['metrics-listen'] !== undefined) layer.metricsListen = values['metrics-listen'];
  if (values['tls-cert'] !== undefined) layer.tlsCert = values['tls-cert'];
  if (values['tls-key'] !== undefined) layer.tlsKey = values['tls-key'];
  const tlsPort = port(values['tls-port'], 'TLS port');
  if (tlsPort !== undefined) layer.tlsPort = tlsPort;
  if (values['allow-cleartext-login'] === true) layer.allowCleartextLogin = true;
  if (values['password-scheme'] !== undefined) layer.passwordScheme = values['password-scheme'];
  if (values.workers !== undefined) {
    if (!/^[0-9]{1,3}$/.test(values.workers)) throw new ConfigError(`invalid workers "${values.workers}"`);
    layer.workers = Number(values.workers);
  }
  if (values['no-blocking-io'] === true) layer.blockingIo = false;
  if (values.user !== undefined) layer.user = values.user;
  if (values.group !== undefined) layer.group = values.group;
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
