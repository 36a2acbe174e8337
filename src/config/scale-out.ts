import { hostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { parseNetwork } from '../pop3/proxy-gate.js';
import { unknownKeys } from './unknown-keys.js';

/**
 * Where the users come from when `users` is not a file: a PostgreSQL database or an LDAP
 * directory (the `[userdb]` table). Which keys apply depends on the URL's scheme.
 */
export interface UserdbConfig {
  /** PostgreSQL: the query that finds a user's password hash, `$1` the user name (Dovecot style). */
  readonly passwordQuery: string | undefined;
  /** PostgreSQL: the monitor's add (`$1` name, `$2` stored password), delete (`$1`) and list queries; absent: refused. */
  readonly addQuery: string | undefined;
  readonly deleteQuery: string | undefined;
  readonly listQuery: string | undefined;
  /** PostgreSQL: a file holding the database password (instead of one in the URL). */
  readonly passwordFile: string | undefined;
  /** LDAP: where users are searched, and the filter (`%u`: the user name, escaped). */
  readonly baseDn: string | undefined;
  readonly filter: string | undefined;
  /** LDAP: the account the search binds as, and the file holding its password. */
  readonly bindDn: string | undefined;
  readonly bindPasswordFile: string | undefined;
  /** LDAP: the attribute holding a `{SCHEME}` password hash; absent: users log in by binding as themselves. */
  readonly passwordAttribute: string | undefined;
  /** How long a verified user keeps logging in while the database cannot be reached. */
  readonly cacheTtlMs: number;
}

/** The settings for running several nodes: PROXY protocol, the Redis cluster state, users in a database. */
export interface ScaleOutConfig {
  /** CIDRs whose connections must start with a PROXY protocol v1 or v2 header. */
  readonly proxyProtocolFrom: readonly string[];
  /** `redis://HOST:PORT[/DB]` or `rediss://...`: the cross-node state; `undefined`: one node. */
  readonly cluster: string | undefined;
  /** A file holding the Redis password. */
  readonly clusterPasswordFile: string | undefined;
  /** This node's name in logs, metrics, leases and the monitor. Default: the host name. */
  readonly nodeName: string;
  /** Seconds a maildrop lock or lease lives without being refreshed (a dead holder's lock expires after it). */
  readonly lockTtl: number;
  readonly userdb: UserdbConfig;
}

export const SCALE_OUT_KEYS = [
  'proxyProtocolFrom',
  'cluster',
  'clusterPasswordFile',
  'nodeName',
  'lockTtl',
  'userdb',
];
export const USERDB_KEYS = [
  'passwordQuery',
  'addQuery',
  'deleteQuery',
  'listQuery',
  'passwordFile',
  'baseDn',
  'filter',
  'bindDn',
  'bindPasswordFile',
  'passwordAttribute',
  'cacheTtlMs',
] as const;

export const DEFAULT_LOCK_TTL = 30;
export const MIN_LOCK_TTL = 5;
export const MAX_LOCK_TTL = 3600;
export const DEFAULT_USERDB_CACHE_TTL_MS = 3_600_000;

/** The layer form: every key optional. */
export type ScaleOutLayer = {
  -readonly [K in keyof ScaleOutConfig]?: K extends 'userdb' ? Partial<UserdbConfig> : ScaleOutConfig[K];
};

/** Whether `users` names a database (`postgresql://`, `postgres://`, `ldap://`, `ldaps://`), not a file. */
export const isUserdbUrl = (users: string): boolean => /^(postgres(ql)?|ldaps?):\/\//i.test(users);

/** The scale-out keys of a TOML document (already checked for unknown top-level keys). */
export function scaleOutLayerFromToml(doc: Record<string, unknown>, source: string): ScaleOutLayer {
  const layer: ScaleOutLayer = {};
  const str = (table: Record<string, unknown>, key: string, name = key): string | undefined => {
    const v = table[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '')
      throw new ConfigError(`${source}: ${name} must be a non-empty string`);
    return v;
  };
  const from = doc['proxyProtocolFrom'];
  if (from !== undefined) {
    if (!Array.isArray(from) || !from.every((c): c is string => typeof c === 'string'))
      throw new ConfigError(`${source}: proxyProtocolFrom must be a list of networks`);
    layer.proxyProtocolFrom = from;
  }
  const cluster = str(doc, 'cluster');
  if (cluster !== undefined) layer.cluster = cluster;
  const clusterPasswordFile = str(doc, 'clusterPasswordFile');
  if (clusterPasswordFile !== undefined) layer.clusterPasswordFile = clusterPasswordFile;
  const nodeName = str(doc, 'nodeName');
  if (nodeName !== undefined) layer.nodeName = nodeName;
  const lockTtl = doc['lockTtl'];
  if (lockTtl !== undefined) {
    if (typeof lockTtl !== 'number')
      throw new ConfigError(`${source}: lockTtl must be a whole number of seconds`);
    layer.lockTtl = lockTtl;
  }
  const table = doc['userdb'];
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null || Array.isArray(table))
      throw new ConfigError(`${source}: [userdb] must be a table`);
    const t = table as Record<string, unknown>;
    const unknown = unknownKeys(Object.keys(t), [...USERDB_KEYS], 'userdb setting');
    if (unknown.length > 0) throw new ConfigError(`${source}: ${unknown.join('; ')}`);
    const userdb: Record<string, unknown> = {};
    for (const key of USERDB_KEYS) {
      if (key === 'cacheTtlMs') continue;
      const v = str(t, key, `userdb.${key}`);
      if (v !== undefined) userdb[key] = v;
    }
    const ttl = t['cacheTtlMs'];
    if (ttl !== undefined) {
      if (typeof ttl !== 'number')
        throw new ConfigError(`${source}: userdb.cacheTtlMs must be a whole number`);
      userdb['cacheTtlMs'] = ttl;
    }
    layer.userdb = userdb;
  }
  return layer;
}

/** Defaults and checks for the scale-out settings. */
export function resolveScaleOut(merged: ScaleOutLayer): ScaleOutConfig {
  const proxyProtocolFrom = merged.proxyProtocolFrom ?? [];
  for (const network of proxyProtocolFrom) parseNetwork(network);
  const cluster = merged.cluster;
  if (cluster !== undefined && !/^rediss?:\/\/[^/]+(\/[0-9]{1,2})?\/?$/i.test(cluster))
    throw new ConfigError('cluster must be redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB]', {
      settings: ['cluster'],
    });
  const nodeName = merged.nodeName ?? hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(nodeName))
    throw new ConfigError('nodeName must be 1 to 63 letters, digits, dots, dashes or underscores', {
      settings: ['nodeName'],
    });
  const lockTtl = merged.lockTtl ?? DEFAULT_LOCK_TTL;
  if (!Number.isInteger(lockTtl) || lockTtl < MIN_LOCK_TTL || lockTtl > MAX_LOCK_TTL)
    throw new ConfigError(
      `lockTtl must be a whole number of seconds from ${MIN_LOCK_TTL} to ${MAX_LOCK_TTL}`,
      {
        settings: ['lockTtl'],
      },
    );
  const u = merged.userdb ?? {};
  const cacheTtlMs = u.cacheTtlMs ?? DEFAULT_USERDB_CACHE_TTL_MS;
  if (!Number.isInteger(cacheTtlMs) || cacheTtlMs < 0)
    throw new ConfigError('userdb.cacheTtlMs must be a whole number of milliseconds, 0 or more', {
      settings: ['userdb'],
    });
  return {
    proxyProtocolFrom,
    cluster,
    clusterPasswordFile: merged.clusterPasswordFile,
    nodeName,
    lockTtl,
    userdb: {
      passwordQuery: u.passwordQuery,
      addQuery: u.addQuery,
      deleteQuery: u.deleteQuery,
      listQuery: u.listQuery,
      passwordFile: u.passwordFile,
      baseDn: u.baseDn,
      filter: u.filter,
      bindDn: u.bindDn,
      bindPasswordFile: u.bindPasswordFile,
      passwordAttribute: u.passwordAttribute,
      cacheTtlMs,
    },
  };
}

/** The scale-out settings' files, relative to a config file's folder; a database URL in `users` stays as it is. */
export function scaleOutPathsFrom(at: (path: string) => string, layer: ScaleOutLayer): ScaleOutLayer {
  const out: ScaleOutLayer = { ...layer };
  if (layer.clusterPasswordFile !== undefined) out.clusterPasswordFile = at(layer.clusterPasswordFile);
  const u = layer.userdb;
  if (u !== undefined)
    out.userdb = {
      ...u,
      ...(u.passwordFile === undefined ? {} : { passwordFile: at(u.passwordFile) }),
      ...(u.bindPasswordFile === undefined ? {} : { bindPasswordFile: at(u.bindPasswordFile) }),
    };
  return out;
}
