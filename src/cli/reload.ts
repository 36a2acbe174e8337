import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import type { Pop3Limits } from '../pop3/limits.js';
import type { Pop3TlsOptions } from '../pop3/tls.js';
import type { AdminStore } from '../monitor/admins.js';
import { readCertificates } from './certificates.js';
import type { Pop3Side } from './pop3-side.js';
import { asError } from '../errors.js';

/**
 * The configuration in force and the certificates last read: changed by each SIGHUP, and what a
 * worker that starts now is given.
 */
export class LiveConfig {
  constructor(
    public config: DaemonConfig,
    public tls: Pop3TlsOptions | undefined,
  ) {}
}

/** Settings a running daemon takes on SIGHUP; every other one needs a restart. */
const LIVE_KEYS: ReadonlySet<keyof DaemonConfig> = new Set(['logLevel', 'limits', 'shutdownGraceMs']);
/** Live while TLS stays on: the files are read again, the listeners stay as they are. */
const TLS_KEYS: ReadonlySet<keyof DaemonConfig> = new Set(['tlsCert', 'tlsKey', 'sni']);

export interface ConfigChanges {
  /** The old configuration with the live changes made: what is in force after the reload. */
  readonly config: DaemonConfig;
  /** Changed settings taken now (`limits.NAME` for a limit). */
  readonly applied: readonly string[];
  /** Changed settings that keep their old value until a restart. */
  readonly needsRestart: readonly string[];
  /** The limits that changed, with their new values. */
  readonly limits: Partial<Pop3Limits>;
}

const isSame = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** What differs between the configuration in force and the one read again, split into live and restart. */
export function compareConfigs(old: DaemonConfig, next: DaemonConfig): ConfigChanges {
  const config: Record<string, unknown> = { ...old };
  const applied: string[] = [];
  const needsRestart: string[] = [];
  const limits: Record<string, unknown> = {};
  for (const name of Object.keys(next.limits) as (keyof Pop3Limits)[]) {
    if (old.limits[name] !== next.limits[name]) {
      limits[name] = next.limits[name];
      applied.push(`limits.${name}`);
    }
  }
  config['limits'] = next.limits;
  const keepsTls = old.tlsCert !== undefined && next.tlsCert !== undefined;
  for (const key of Object.keys(next) as (keyof DaemonConfig)[]) {
    if (key === 'limits' || isSame(old[key], next[key])) continue;
    if (LIVE_KEYS.has(key) || (keepsTls && TLS_KEYS.has(key))) {
      config[key] = next[key];
      applied.push(key);
    } else needsRestart.push(key);
  }
  return {
    config: config as unknown as DaemonConfig,
    applied,
    needsRestart,
    limits: limits,
  };
}

/** What a reload touches. */
export interface Reloadable {
  readonly side: Pop3Side;
  readonly admins: AdminStore | undefined;
}

/**
 * SIGHUP: reads the configuration again (flags and TOML file, through `reread`), takes what can
 * change live in this process and every worker (limits, log level, shutdown grace, certificate
 * files), reads the certificates, the users file and the admins file again, and logs one line: what
 * changed, and apart from it what needs a restart. A configuration that does not parse or validate
 * is refused with an error line and the old one stays in force; the files are read again anyway.
 * Resolves to what changed, or undefined when the configuration was refused.
 */
export async function reloadConfiguration(
  running: Reloadable,
  live: LiveConfig,
  reread: () => Promise<DaemonConfig>,
  logger: pino.Logger,
): Promise<ConfigChanges | undefined> {
  let changes: ConfigChanges | undefined;
  try {
    changes = compareConfigs(live.config, await reread());
  } catch (error) {
    logger.error({ err: asError(error) }, 'configuration not reloaded; the old one stays in use');
  }
  let config = changes?.config ?? live.config;
  let tls: Pop3TlsOptions | undefined;
  if (config.tlsCert !== undefined) {
    try {
      tls = await readCertificates(config);
    } catch (error) {
      logger.error({ err: asError(error) }, 'certificates not reloaded; the old ones stay in use');
      if (changes !== undefined) {
        // New certificate paths that cannot be read are not taken either.
        const { tlsCert, tlsKey, sni } = live.config;
        config = { ...config, tlsCert, tlsKey, sni };
        changes = {
          ...changes,
          applied: changes.applied.filter((k) => !TLS_KEYS.has(k as keyof DaemonConfig)),
        };
      }
    }
  }
  const isLevelChanged = config.logLevel !== live.config.logLevel;
  live.config = config;
  if (tls !== undefined) live.tls = tls;
  try {
    await running.side.reload({
      ...(changes === undefined || Object.keys(changes.limits).length === 0
        ? {}
        : { limits: changes.limits }),
      ...(isLevelChanged ? { logLevel: config.logLevel } : {}),
      ...(tls === undefined ? {} : { tls }),
    });
  } catch (error) {
    logger.error({ err: asError(error) }, 'workers did not all reload');
  }
  for (const file of [running.side.usersFile, running.admins]) {
    await file?.reload().catch((error: unknown) => {
      logger.error({ file: file.path, err: asError(error) }, 'file not reloaded');
    });
  }
  if (changes !== undefined) {
    const { applied, needsRestart } = changes;
    // Logged before a new level is set, so that the line shows even when the level goes up.
    logger[needsRestart.length > 0 ? 'warn' : 'info'](
      { applied, needsRestart },
      needsRestart.length > 0
        ? `configuration reloaded; ${needsRestart.join(', ')} changed but need${needsRestart.length === 1 ? 's' : ''} a restart`
        : 'configuration reloaded',
    );
  }
  logger.level = config.logLevel;
  return changes;
}

/**
 * {@link reloadConfiguration} one at a time, for SIGHUP and the monitor's CONFIG 0x07 alike: each
 * call waits for the one before it to end.
 */
export function reloader(
  running: Reloadable,
  live: LiveConfig,
  reread: () => Promise<DaemonConfig>,
  logger: pino.Logger,
): () => Promise<ConfigChanges | undefined> {
  let last: Promise<unknown> = Promise.resolve();
  return () => {
    const next = last.then(() => reloadConfiguration(running, live, reread, logger));
    last = next.catch(() => undefined);
    return next;
  };
}
