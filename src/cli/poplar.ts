import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import {
  readConfigFile,
  resolveConfig,
  type ConfigLayer,
  type DaemonConfig,
  type LogFormat,
} from '../config/config.js';
import { asError, ConfigError } from '../errors.js';
import { authTestCommand } from './auth-test.js';
import { checkConfigCommand } from './check-config.js';
import { serve } from './daemon.js';
import { hashPasswordCommand } from './hash-password.js';
import { makeLogger } from './logger.js';
import { version } from './version.js';
import { workerMain } from './worker-main.js';

const USAGE = `Usage: poplar [options]
       poplar check-config [options]       check as at start, print the effective configuration
       poplar auth-test USER [PASSWORD] [options]   test a login against the users file
       poplar hash-password [--scheme SCHEME] [--user NAME]   (see poplar hash-password --help)

Serves Maildir mailboxes (<maildir>/<user>/{new,cur,tmp}) over POP3.

Options:
  -p, --port PORT       POP3 port (default 1100)
  -m, --maildir DIR     mail root (default ./directories/)
      --listen ADDR     address to listen on; repeat for more (IPv4 or IPv6).
                        Default: 127.0.0.1 and ::1 in demo mode, else 0.0.0.0 and ::
      --users FILE|URL  users file, Dovecot passwd-file form (user:{SCHEME}hash),
                        or a database: postgresql://... or ldap[s]://... ([userdb]).
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
                        serve Prometheus metrics at http://ADDR:PORT/metrics, and the
                        dashboard at / (monitor admins log in; HTTPS only off loopback)
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
      --proxy-protocol-from CIDR
                        connections from this network start with a PROXY protocol
                        header (HAProxy send-proxy[-v2]); repeat for more
      --cluster redis://HOST:PORT[/DB]
                        share leases, throttle, limits and sessions through Redis
      --cluster-password-file FILE
                        the Redis password
      --node-name NAME  this node's name (default: the host name)
      --lock-ttl SECONDS
                        a maildrop lock not refreshed for this long is stale (default 30)
      --config FILE     TOML config file; flags win over it
      --log-level LEVEL fatal, error, warn, info (default), debug, trace or silent
      --log-format FORMAT
                        text (one readable line per entry; the default on a terminal)
                        or json (pino's JSON lines; the default otherwise)
  -h, --help            show this help
  -v, --version         show the version
`;

/** The flag of each setting that has one: error messages name the flag the user typed. */
const FLAG_OF_SETTING: Readonly<Record<string, string>> = {
  port: '--port',
  maildir: '--maildir',
  listen: '--listen',
  users: '--users',
  logLevel: '--log-level',
  logFormat: '--log-format',
  monitorPort: '--monitor-port',
  monitorListen: '--monitor-listen',
  admins: '--admins',
  metricsListen: '--metrics-listen',
  tlsCert: '--tls-cert',
  tlsKey: '--tls-key',
  tlsPort: '--tls-port',
  allowCleartextLogin: '--allow-cleartext-login',
  passwordScheme: '--password-scheme',
  workers: '--workers',
  blockingIo: '--no-blocking-io',
  user: '--user',
  group: '--group',
  proxyProtocolFrom: '--proxy-protocol-from',
  cluster: '--cluster',
  clusterPasswordFile: '--cluster-password-file',
  nodeName: '--node-name',
  lockTtl: '--lock-ttl',
};

/**
 * A config error in the words of where its settings came from: a setting given as a flag is named
 * by that flag (`--log-level must be ...`, with the value typed), one from the TOML file by its key
 * after the file's name (`poplar.toml: logLevel must be ...`).
 */
function inTheirWords(
  error: ConfigError,
  flags: { layer: ConfigLayer; typed: Record<string, string>; config?: string },
  fileLayer: ConfigLayer,
): string {
  let message = error.message;
  const isFromFile = error.settings.some(
    (s) => Object.hasOwn(fileLayer, s) && !Object.hasOwn(flags.layer, s),
  );
  const asFlag = new Map<string, string>();
  for (const setting of error.settings) {
    const flag = FLAG_OF_SETTING[setting];
    const isFlag = Object.hasOwn(flags.layer, setting);
    if (flag !== undefined && (isFlag || (!isFromFile && !Object.hasOwn(fileLayer, setting))))
      asFlag.set(setting, flag);
  }
  if (asFlag.size > 0) {
    const names = new RegExp(`(?<![\\w-])(${[...asFlag.keys()].join('|')})(?![\\w-])`, 'g');
    message = message.replace(names, (setting) => asFlag.get(setting) ?? setting);
  }
  const [only] = error.settings;
  const typed = error.settings.length === 1 && only !== undefined ? flags.typed[only] : undefined;
  if (typed !== undefined) message += `, not ${JSON.stringify(typed)}`;
  return isFromFile && flags.config !== undefined ? `${flags.config}: ${message}` : message;
}

const HINT = 'try poplar --help for the options\n';

/** Flags that take a number: `-p -5` is the value -5 (refused as a port), not a missing value. */
const NUMBER_FLAGS = new Set(['-p', '--port', '--monitor-port', '--tls-port', '--workers', '--lock-ttl']);

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
  /** The text given to each number flag, by setting. */
  typed: Record<string, string>;
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
      'log-format': { type: 'string' },
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
      'proxy-protocol-from': { type: 'string', multiple: true },
      cluster: { type: 'string' },
      'cluster-password-file': { type: 'string' },
      'node-name': { type: 'string' },
      'lock-ttl': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const layer: ConfigLayer = {};
  const typed: Record<string, string> = {};
  // Anything but a whole number becomes NaN, which the config refuses with the setting's range.
  const number = (text: string | undefined, setting: string): number | undefined => {
    if (text === undefined) return undefined;
    typed[setting] = text;
    return /^-?[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
  };
  const pop3Port = number(values.port, 'port');
  if (pop3Port !== undefined) layer.port = pop3Port;
  const monitorPort = number(values['monitor-port'], 'monitorPort');
  if (monitorPort !== undefined) layer.monitorPort = monitorPort;
  if (values['no-monitor'] === true) layer.monitorPort = false;
  if (values['monitor-listen'] !== undefined) layer.monitorListen = values['monitor-listen'];
  if (values.admins !== undefined) layer.admins = values.admins;
  if (values['metrics-listen'] !== undefined) layer.metricsListen = values['metrics-listen'];
  if (values['tls-cert'] !== undefined) layer.tlsCert = values['tls-cert'];
  if (values['tls-key'] !== undefined) layer.tlsKey = values['tls-key'];
  const tlsPort = number(values['tls-port'], 'tlsPort');
  if (tlsPort !== undefined) layer.tlsPort = tlsPort;
  if (values['allow-cleartext-login'] === true) layer.allowCleartextLogin = true;
  if (values['password-scheme'] !== undefined) layer.passwordScheme = values['password-scheme'];
  const workers = number(values.workers, 'workers');
  if (workers !== undefined) layer.workers = workers;
  if (values['no-blocking-io'] === true) layer.blockingIo = false;
  if (values.user !== undefined) layer.user = values.user;
  if (values.group !== undefined) layer.group = values.group;
  if (values.maildir !== undefined) layer.maildir = values.maildir;
  if (values.listen !== undefined) layer.listen = values.listen;
  if (values.users !== undefined) layer.users = values.users;
  if (values['log-level'] !== undefined) layer.logLevel = values['log-level'];
  if (values['log-format'] !== undefined) layer.logFormat = values['log-format'] as LogFormat;
  if (values['proxy-protocol-from'] !== undefined) layer.proxyProtocolFrom = values['proxy-protocol-from'];
  if (values.cluster !== undefined) layer.cluster = values.cluster;
  if (values['cluster-password-file'] !== undefined)
    layer.clusterPasswordFile = values['cluster-password-file'];
  if (values['node-name'] !== undefined) layer.nodeName = values['node-name'];
  const lockTtl = number(values['lock-ttl'], 'lockTtl');
  if (lockTtl !== undefined) layer.lockTtl = lockTtl;
  return {
    layer,
    typed,
    ...(values.config === undefined ? {} : { config: values.config }),
    help: values.help === true,
    version: values.version === true,
  };
}

/** The configuration from the flags and the TOML file they name, read again on SIGHUP. */
async function readDaemonConfig(argv: string[]): Promise<DaemonConfig> {
  const flags = flagsLayer(argv);
  const fileLayer = flags.config === undefined ? {} : await readConfigFile(flags.config);
  return resolveConfig(fileLayer, flags.layer);
}

/**
 * The flags and the TOML file they name, as the daemon reads them at start; or, once the error (or
 * the help or version) is written, the exit code.
 */
async function readConfig(argv: string[]): Promise<DaemonConfig | number> {
  let flags;
  try {
    flags = flagsLayer(argv);
  } catch (error) {
    // parseArgs: an unknown option, a stray argument or a missing value.
    process.stderr.write(`poplar: ${(error as Error).message}\n${HINT}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (flags.version) {
    process.stdout.write(`poplar ${version()}\n`);
    return 0;
  }
  let fileLayer: ConfigLayer = {};
  try {
    if (flags.config !== undefined) fileLayer = await readConfigFile(flags.config);
    return resolveConfig(fileLayer, flags.layer);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`poplar: ${inTheirWords(error, flags, fileLayer)}\n`);
    return 2;
  }
}

/** The daemon. Resolves with the exit code once the server has stopped. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'hash-password') return hashPasswordCommand(argv.slice(1));
  if (argv[0] === 'check-config') return checkConfigCommand(argv.slice(1), readConfig);
  if (argv[0] === 'auth-test') return authTestCommand(argv.slice(1), readConfig);
  // A worker starts from the primary's configuration, not from the flags and file.
  if (cluster.isWorker) return workerMain((config) => makeLogger(config.logLevel, config.logFormat));
  const config = await readConfig(argv);
  if (typeof config === 'number') return config;
  const logger = makeLogger(config.logLevel, config.logFormat);
  try {
    return await serve(config, logger, () => readDaemonConfig(argv));
  } catch (error) {
    logger.fatal({ err: asError(error) }, 'poplar could not start');
    process.stderr.write(`poplar: ${(error as Error).message}\n`);
    return 1;
  }
}
