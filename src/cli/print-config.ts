import { resolve } from 'node:path';
import { formatHostPort, resolveConfig, type DaemonConfig } from '../config/config.js';
import type { OAuthConfig } from '../config/oauth.js';
import type { UserPolicyOverrides } from '../policy.js';
import { formatPolicyValue, POLICY_FIELDS, POLICY_KEYS } from '../policy-fields.js';
import { isUserdbUrl, type UserdbConfig } from '../config/scale-out.js';
import { DEFAULT_CHALLENGE_DOMAIN } from '../pop3/server.js';
import { planOf } from './plan.js';

type Value = string | number | boolean | readonly string[];

/** A TOML value: JSON's string escapes are TOML's basic-string escapes. */
const toml = (value: Value): string =>
  Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : JSON.stringify(value);

const same = (a: Value | undefined, b: Value | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Where a relative path in the config leads: the daemon opens it from its working directory. */
const absolute = (path: string | undefined): string | undefined =>
  path === undefined ? undefined : resolve(path);

/** The `[oauth]` keys that hold paths, and the one that holds a secret (never printed). */
const OAUTH_PATHS = new Set(['clientSecretFile', 'jwksFile']);

/**
 * The effective configuration as TOML that `--config` reads back to the same configuration (and
 * the same text), as `doveconf -n` prints Dovecot's: every setting with its value after the flags,
 * the file and the defaults; a setting whose value differs from the default ends in
 * `# default: ...`; a setting that is not set is a comment saying what applies instead. Paths are
 * absolute (resolved from the working directory, as the daemon opens them); secrets (the `[oauth]`
 * clientSecret) are never printed.
 */
export function printConfig(config: DaemonConfig, heading: string): string {
  // The defaults of this mode (demo or not): listen's default depends on it.
  const defaults = resolveConfig(config.users === undefined ? {} : { users: config.users });
  const plan = planOf(config);
  const out = [`# ${heading}`, '# A setting that differs from its default ends in "# default: ...".'];
  const line = (
    key: string,
    value: Value | undefined,
    fallback: Value | undefined,
    unset = '',
    shownFallback = fallback === undefined ? 'not set' : toml(fallback),
  ): void => {
    if (value === undefined) {
      out.push(`# ${key}: not set${unset === '' ? '' : ` (${unset})`}`);
      return;
    }
    const note = same(value, fallback) ? '' : `  # default: ${shownFallback}`;
    out.push(`${key} = ${toml(value)}${note}`);
  };
  line('port', config.port, defaults.port);
  // The default is a folder of the working directory: shown as such, not as this one's.
  line('maildir', absolute(config.maildir), absolute(defaults.maildir), '', toml(defaults.maildir));
  line('listen', plan.listen, planOf(defaults).listen);
  const users = config.users;
  const isDatabase = users !== undefined && isUserdbUrl(users);
  line(
    'users',
    isDatabase ? withoutPassword(users) : absolute(users),
    undefined,
    `demo mode: ${resolve(plan.usersPath)}`,
  );
  line(
    'hostname',
    config.hostname,
    undefined,
    `APOP and CRAM-MD5 challenges use "${DEFAULT_CHALLENGE_DOMAIN}"`,
  );
  line('logLevel', config.logLevel, defaults.logLevel);
  line('logFormat', config.logFormat, undefined, 'text on a terminal, json otherwise');
  line('shutdownGraceMs', config.shutdownGraceMs, defaults.shutdownGraceMs);
  line('monitorPort', config.monitorPort ?? false, defaults.monitorPort ?? false);
  line('monitorListen', config.monitorListen, defaults.monitorListen);
  line('admins', absolute(config.admins), undefined, resolve(plan.adminsPath));
  const metrics = config.metricsListen;
  line(
    'metricsListen',
    metrics === undefined ? undefined : formatHostPort(metrics.host, metrics.port),
    undefined,
    'no /metrics',
  );
  line('tlsCert', absolute(config.tlsCert), undefined, 'no TLS');
  line('tlsKey', absolute(config.tlsKey), undefined, 'no TLS');
  line('tlsPort', config.tlsPort, undefined, 'no POP3S port');
  line('allowCleartextLogin', config.allowCleartextLogin, defaults.allowCleartextLogin);
  line('passwordScheme', config.passwordScheme, defaults.passwordScheme);
  line('workers', config.workers, defaults.workers);
  line('blockingIo', config.blockingIo, defaults.blockingIo);
  line('user', config.user, undefined, 'runs as the account that starts it');
  line('group', config.group, undefined, config.user === undefined ? '' : "the user's own group");
  line('proxyProtocolFrom', config.proxyProtocolFrom, defaults.proxyProtocolFrom);
  line(
    'cluster',
    config.cluster === undefined ? undefined : withoutPassword(config.cluster),
    undefined,
    'one node',
  );
  line('clusterPasswordFile', absolute(config.clusterPasswordFile), undefined, "none, or the URL's");
  line('nodeName', config.nodeName, defaults.nodeName);
  line('lockTtl', config.lockTtl, defaults.lockTtl);
  out.push('', '[limits]');
  for (const [key, value] of Object.entries(config.limits))
    line(key, value as number, defaults.limits[key as keyof typeof defaults.limits]);
  for (const [name, files] of Object.entries(config.sni)) {
    out.push('', `[sni.${JSON.stringify(name)}]`);
    line('cert', absolute(files.cert), absolute(files.cert));
    line('key', absolute(files.key), absolute(files.key));
  }
  if (config.oauth !== undefined) out.push('', '[oauth]', ...oauthLines(config.oauth));
  if (Object.keys(config.policy).length > 0) out.push('', '[policy]', ...policyLines(config.policy));
  if (isDatabase) out.push('', '[userdb]', ...userdbLines(config.userdb));
  return `${out.join('\n')}\n`;
}

/** The `[policy]` table as TOML, in the users file's spelling of each value. */
function policyLines(policy: UserPolicyOverrides): string[] {
  return POLICY_KEYS.filter((key) => policy[key] !== undefined).map((key) => {
    const value = policy[key];
    const toml =
      typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : JSON.stringify(formatPolicyValue(key, value as never));
    return `${POLICY_FIELDS[key].toml} = ${toml}`;
  });
}

function oauthLines(oauth: OAuthConfig): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(oauth) as [string, string | number | undefined][]) {
    if (value === undefined) continue;
    if (key === 'clientSecret') lines.push('# clientSecret: set, not shown (give clientSecretFile instead)');
    else lines.push(`${key} = ${toml(OAUTH_PATHS.has(key) ? resolve(String(value)) : value)}`);
  }
  return lines;
}

/** A URL with its password, if any, replaced: the printed configuration holds no secret. */
export function withoutPassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, '$1:(not shown)@');
}

function userdbLines(userdb: UserdbConfig): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(userdb) as [string, string | number | undefined][]) {
    if (value === undefined) continue;
    lines.push(`${key} = ${toml(key.endsWith('File') ? resolve(String(value)) : value)}`);
  }
  return lines;
}
