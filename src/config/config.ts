import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { DEFAULT_SCHEME, findScheme, schemeNames } from '../auth/passwords/registry.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_LIMITS, resolveLimits, type Pop3Limits } from '../pop3/limits.js';
import { parseOAuthTable, type OAuthConfig } from './oauth.js';
import { unknownKeys } from './unknown-keys.js';
import { parsePolicyTable } from './policy.js';
import type { UserPolicyOverrides } from '../policy.js';
import * as so from './scale-out.js';

export type { OAuthConfig } from './oauth.js';

/** Everything the daemon can be told, from flags and the TOML file. */
export interface DaemonConfig extends so.ScaleOutConfig {
  readonly port: number;
  readonly maildir: string;
  /** Addresses to listen on; empty means the default for the mode (loopback in demo mode, all otherwise). */
  readonly listen: readonly string[];
  readonly users: string | undefined;
  readonly hostname: string | undefined;
  readonly logLevel: string;
  /** `text`: one readable line per entry; `json`: pino's JSON lines; `undefined`: text on a terminal, else JSON. */
  readonly logFormat: LogFormat | undefined;
  readonly shutdownGraceMs: number;
  readonly limits: Pop3Limits;
  /** Monitor protocol port; `undefined` turns the monitor off. */
  readonly monitorPort: number | undefined;
  /** Addresses the monitor listens on (loopback by default). */
  readonly monitorListen: readonly string[];
  /** Admins file; without it, `<maildir>/.poplar-admins` with the default admin. */
  readonly admins: string | undefined;
  /** `ADDR:PORT` for the Prometheus endpoint; `undefined`: no endpoint. */
  readonly metricsListen: { readonly host: string; readonly port: number } | undefined;
  /** PEM files of the default certificate; both or neither. */
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** Port for implicit TLS (POP3S), on the same addresses as POP3; `undefined`: none. */
  readonly tlsPort: number | undefined;
  /** More certificates by SNI name: `{ "mail.example.org": { cert, key } }`. */
  readonly sni: Readonly<Record<string, { readonly cert: string; readonly key: string }>>;
  /** Scheme for passwords Poplar writes (monitor, demo user): a `{SCHEME}` name without braces. */
  readonly passwordScheme: string;
  /** Allow cleartext logins on unencrypted, non-loopback connections. */
  readonly allowCleartextLogin: boolean;
  /** Bearer-token checking for OAUTHBEARER and XOAUTH2 (the `[oauth]` table); `undefined`: not offered. */
  readonly oauth: OAuthConfig | undefined;
  /** POP3 worker processes (1: one process, no cluster). Default: the number of CPUs. */
  readonly workers: number;
  /** Blocking file-system calls instead of the thread pool (see MaildirStoreOptions.blockingIo). */
  readonly blockingIo: boolean;
  /** Started as root: the user (and group; default the user's own) every process switches to once its ports are bound. */
  readonly user: string | undefined;
  readonly group: string | undefined;
  /** Server-wide defaults of every user's policy (the `[policy]` table; docs/policy.md). */
  readonly policy: UserPolicyOverrides;
}

/** Most worker processes allowed (each holds its own copy of the users file and caches). */
export const MAX_WORKERS = 64;

export const DEFAULT_PORT = 1100;
export const DEFAULT_MAILDIR = './directories/';
export const DEFAULT_MONITOR_PORT = 1081;
export const DEFAULT_MONITOR_LISTEN = ['127.0.0.1', '::1'] as const;

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** The settings a config file's top level takes (`limits`, `sni` and `oauth` are tables). */
export const TOP_KEYS = [
  'port',
  'maildir',
  'listen',
  'users',
  'hostname',
  'logLevel',
  'logFormat',
  'shutdownGraceMs',
  'limits',
  'monitorPort',
  'monitorListen',
  'admins',
  'metricsListen',
  'tlsCert',
  'tlsKey',
  'tlsPort',
  'sni',
  'allowCleartextLogin',
  'passwordScheme',
  'oauth',
  'workers',
  'blockingIo',
  'user',
  'group',
  'policy',
  ...so.SCALE_OUT_KEYS,
];

/** A partial config, as read from one source (flags or file), before defaults. */
export type ConfigLayer = so.ScaleOutLayer & {
  -readonly [K in Exclude<keyof DaemonConfig, keyof so.ScaleOutConfig>]?: K extends 'limits'
    ? Partial<Pop3Limits>
    : K extends 'metricsListen'
      ? string
      : K extends 'monitorPort'
        ? number | false
        : DaemonConfig[K];
};

/** `ADDR:PORT`, with an IPv6 address in brackets: what {@link parseHostPort} reads, and a URL's authority. */
export const formatHostPort = (host: string, port: number): string =>
  `${host.includes(':') ? `[${host}]` : host}:${String(port)}`;

/** Parses `ADDR:PORT` (`[v6]:PORT` for IPv6). */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535)
    throw new ConfigError(`${what} must be ADDR:PORT (IPv6 as [ADDR]:PORT)`, { settings: [what] });
  return { host: m[1] ?? m[2] ?? '', port };
}

const addressList = (value: unknown, source: string, key: string): string[] => {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((a): a is string => typeof a === 'string' && a !== '')
  ) {
    throw new ConfigError(`${source}: ${key} must be a non-empty list of addresses`);
  }
  return value;
};

export async function readConfigFile(path: string): Promise<ConfigLayer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path}: ${(error as Error).message}`);
  }
  return withPathsFrom(dirname(resolve(path)), layerFromToml(doc, path));
}

/**
 * A config file's relative paths name files next to it, whatever the working directory: the
 * mail root, the users and admins files, the TLS files and the OAuth files become absolute.
 */
export function withPathsFrom(dir: string, layer: ConfigLayer): ConfigLayer {
  const at = (path: string): string => resolve(dir, path);
  const out: ConfigLayer = { ...layer, ...so.scaleOutPathsFrom(at, layer) };
  for (const key of ['maildir', 'users', 'admins', 'tlsCert', 'tlsKey'] as const) {
    const value = layer[key];
    if (value !== undefined && !(key === 'users' && so.isUserdbUrl(value))) out[key] = at(value);
  }
  if (layer.sni !== undefined)
    out.sni = Object.fromEntries(
      Object.entries(layer.sni).map(([name, pair]) => [name, { cert: at(pair.cert), key: at(pair.key) }]),
    );
  const { oauth } = layer;
  if (oauth !== undefined)
    out.oauth = {
      ...oauth,
      clientSecretFile: oauth.clientSecretFile === undefined ? undefined : at(oauth.clientSecretFile),
      jwksFile: oauth.jwksFile === undefined ? undefined : at(oauth.jwksFile),
    };
  return out;
}

export function layerFromToml(doc: Record<string, unknown>, source: string): ConfigLayer {
  const layer: ConfigLayer = {};
  const limitsTable = doc['limits'];
  const unknown = [
    ...unknownKeys(Object.keys(doc), TOP_KEYS, 'setting', Object.keys(DEFAULT_LIMITS)),
    ...(typeof limitsTable === 'object' && limitsTable !== null && !Array.isArray(limitsTable)
      ? unknownKeys(Object.keys(limitsTable), Object.keys(DEFAULT_LIMITS), 'limit')
      : []),
  ];
  if (unknown.length > 0) throw new ConfigError(`${source}: ${unknown.join('; ')}`);
  Object.assign(layer, so.scaleOutLayerFromToml(doc, source));
  const str = (key: string): string | undefined => {
    const v = doc[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '')
      throw new ConfigError(`${source}: ${key} must be a non-empty string`);
    return v;
  };
  const int = (key: string): number | undefined => {
    const v = doc[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw new ConfigError(`${source}: ${key} must be a whole number`);
    return v;
  };
  const port = int('port');
  if (port !== undefined) layer.port = port;
  const maildir = str('maildir');
  if (maildir !== undefined) layer.maildir = maildir;
  const users = str('users');
  if (users !== undefined) layer.users = users;
  const hostname = str('hostname');
  if (hostname !== undefined) layer.hostname = hostname;
  const logLevel = str('logLevel');
  if (logLevel !== undefined) layer.logLevel = logLevel;
  const logFormat = str('logFormat');
  if (logFormat !== undefined) layer.logFormat = logFormat as LogFormat;
  const grace = int('shutdownGraceMs');
  if (grace !== undefined) layer.shutdownGraceMs = grace;
  if (doc['listen'] !== undefined) layer.listen = addressList(doc['listen'], source, 'listen');
  if (doc['monitorListen'] !== undefined)
    layer.monitorListen = addressList(doc['monitorListen'], source, 'monitorListen');
  const monitorPort = doc['monitorPort'];
  if (monitorPort === false) layer.monitorPort = false;
  else if (monitorPort !== undefined) {
    if (typeof monitorPort !== 'number' || !Number.isInteger(monitorPort))
      throw new ConfigError(`${source}: monitorPort must be a whole number, or false for no monitor`);
    layer.monitorPort = monitorPort;
  }
  const admins = str('admins');
  if (admins !== undefined) layer.admins = admins;
  const metricsListen = str('metricsListen');
  if (metricsListen !== undefined) layer.metricsListen = metricsListen;
  const passwordScheme = str('passwordScheme');
  if (passwordScheme !== undefined) layer.passwordScheme = passwordScheme;
  const tlsCert = str('tlsCert');
  if (tlsCert !== undefined) layer.tlsCert = tlsCert;
  const tlsKey = str('tlsKey');
  if (tlsKey !== undefined) layer.tlsKey = tlsKey;
  const tlsPort = int('tlsPort');
  if (tlsPort !== undefined) layer.tlsPort = tlsPort;
  const workers = int('workers');
  if (workers !== undefined) layer.workers = workers;
  const user = str('user');
  if (user !== undefined) layer.user = user;
  const group = str('group');
  if (group !== undefined) layer.group = group;
  const blockingIo = doc['blockingIo'];
  if (blockingIo !== undefined) {
    if (typeof blockingIo !== 'boolean') throw new ConfigError(`${source}: blockingIo must be true or false`);
    layer.blockingIo = blockingIo;
  }
  const cleartext = doc['allowCleartextLogin'];
  if (cleartext !== undefined) {
    if (typeof cleartext !== 'boolean')
      throw new ConfigError(`${source}: allowCleartextLogin must be true or false`);
    layer.allowCleartextLogin = cleartext;
  }
  const sni = doc['sni'];
  if (sni !== undefined) {
    if (typeof sni !== 'object' || sni === null || Array.isArray(sni)) {
      throw new ConfigError(`${source}: [sni] must be a table of host names`);
    }
    const entries: Record<string, { cert: string; key: string }> = {};
    for (const [name, value] of Object.entries(sni)) {
      const v = value as Record<string, unknown>;
      if (typeof v['cert'] !== 'string' || typeof v['key'] !== 'string' || Object.keys(v).length !== 2) {
        throw new ConfigError(`${source}: [sni."${name}"] needs exactly cert and key file names`);
      }
      entries[name] = { cert: v['cert'], key: v['key'] };
    }
    layer.sni = entries;
  }
  if (doc['oauth'] !== undefined) layer.oauth = parseOAuthTable(doc['oauth'], source);
  if (doc['policy'] !== undefined) layer.policy = parsePolicyTable(doc['policy'], source);
  const limits = doc['limits'];
  if (limits !== undefined) {
    if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
      throw new ConfigError(`${source}: [limits] must be a table`);
    }
    layer.limits = limits;
  }
  return layer;
}

/** Applies defaults to the layers, later layers winning, and validates the result. */
export function resolveConfig(...layers: ConfigLayer[]): DaemonConfig {
  const merged: ConfigLayer = {};
  let limits: Partial<Pop3Limits> = {};
  for (const layer of layers) {
    Object.assign(merged, layer);
    if (layer.limits !== undefined) limits = { ...limits, ...layer.limits };
  }
  const port = checkPort(merged.port ?? DEFAULT_PORT, 'port');
  const tlsPort = checkPort(merged.tlsPort, 'tlsPort');
  const monitorPort = checkPort(
    merged.monitorPort === false ? undefined : (merged.monitorPort ?? DEFAULT_MONITOR_PORT),
    'monitorPort',
  );
  // Port 0 is a new random port each time; the same fixed port twice would collide with itself.
  if (tlsPort !== undefined && tlsPort !== 0 && tlsPort === port)
    throw new ConfigError(`tlsPort must differ from port (both ${port})`, { settings: ['tlsPort', 'port'] });
  for (const [other, value] of [
    ['port', port],
    ['tlsPort', tlsPort],
  ] as const) {
    if (monitorPort !== undefined && monitorPort !== 0 && monitorPort === value)
      throw new ConfigError(`monitorPort must differ from ${other} (both ${value})`, {
        settings: ['monitorPort', other],
      });
  }
  if ((merged.tlsCert === undefined) !== (merged.tlsKey === undefined)) {
    throw new ConfigError('tlsCert and tlsKey go together', { settings: ['tlsCert', 'tlsKey'] });
  }
  if (
    (merged.tlsPort !== undefined || Object.keys(merged.sni ?? {}).length > 0) &&
    merged.tlsCert === undefined
  ) {
    throw new ConfigError('tlsPort and sni need tlsCert and tlsKey', {
      settings: ['tlsPort', 'sni', 'tlsCert', 'tlsKey'],
    });
  }
  const logLevel = merged.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`, { settings: ['logLevel'] });
  const logFormat = merged.logFormat;
  if (logFormat !== undefined && !LOG_FORMATS.includes(logFormat))
    throw new ConfigError(`logFormat must be ${LOG_FORMATS.join(' or ')}`, { settings: ['logFormat'] });
  const workers = merged.workers ?? Math.min(availableParallelism(), MAX_WORKERS);
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS)
    throw new ConfigError(`workers must be a whole number from 1 to ${MAX_WORKERS}`, {
      settings: ['workers'],
    });
  if (merged.group !== undefined && merged.user === undefined)
    throw new ConfigError('group needs user: name the account to switch to as well', {
      settings: ['group', 'user'],
    });
  const shutdownGraceMs = merged.shutdownGraceMs ?? 5000;
  if (shutdownGraceMs < 0)
    throw new ConfigError('shutdownGraceMs must not be negative', { settings: ['shutdownGraceMs'] });
  return {
    ...so.resolveScaleOut(merged),
    port,
    maildir: merged.maildir ?? DEFAULT_MAILDIR,
    listen: merged.listen ?? [],
    users: merged.users,
    hostname: merged.hostname,
    logLevel,
    logFormat,
    shutdownGraceMs,
    limits: limitsOf(limits),
    monitorPort,
    monitorListen: merged.monitorListen ?? DEFAULT_MONITOR_LISTEN,
    admins: merged.admins,
    metricsListen:
      merged.metricsListen === undefined ? undefined : parseHostPort(merged.metricsListen, 'metricsListen'),
    tlsCert: merged.tlsCert,
    tlsKey: merged.tlsKey,
    tlsPort,
    sni: merged.sni ?? {},
    allowCleartextLogin: merged.allowCleartextLogin ?? false,
    passwordScheme: checkScheme(merged.passwordScheme ?? DEFAULT_SCHEME),
    oauth: merged.oauth,
    workers,
    blockingIo: merged.blockingIo ?? true,
    user: merged.user,
    group: merged.group,
    policy: merged.policy ?? {},
  };
}

/** The limits with their defaults; an error names the `[limits]` table as its setting. */
function limitsOf(limits: Partial<Pop3Limits>): Pop3Limits {
  try {
    return resolveLimits(limits);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.message, { settings: ['limits'], cause: error });
  }
}

function checkPort<T extends number | undefined>(port: T, what: string): T {
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new ConfigError(`${what} must be a whole number from 0 to 65535`, { settings: [what] });
  }
  return port;
}

function checkScheme(name: string): string {
  const scheme = findScheme(name);
  if (scheme === undefined || scheme.isPlaintext) {
    throw new ConfigError(
      `passwordScheme must be a hashing scheme: ${schemeNames()
        .filter((n) => n !== 'PLAIN')
        .join(', ')}`,
      { settings: ['passwordScheme'] },
    );
  }
  return scheme.name;
}
