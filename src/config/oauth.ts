import { ConfigError } from '../errors.js';

/**
 * The `[oauth]` table: how the daemon checks the bearer tokens of OAUTHBEARER and XOAUTH2.
 * Exactly one source: an introspection endpoint (RFC 7662), or a JWKS by URL or file for tokens
 * that are signed JWTs.
 */
export interface OAuthConfig {
  readonly introspectionUrl: string | undefined;
  /** Poplar's client credentials at the introspection endpoint; the secret inline or in a file. */
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  readonly clientSecretFile: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly jwksFile: string | undefined;
  /** Required `iss`, when set. */
  readonly issuer: string | undefined;
  /** Required `aud`: mandatory with a JWKS, optional with introspection. */
  readonly audience: string | undefined;
  /** The claim that holds the user name; default `username` then `sub` (introspection), `email` then `sub` (JWT). */
  readonly usernameClaim: string | undefined;
  /** Deadline for a request to the authorization server, in milliseconds. */
  readonly timeoutMs: number | undefined;
}

const STRING_KEYS = [
  'introspectionUrl',
  'clientId',
  'clientSecret',
  'clientSecretFile',
  'jwksUrl',
  'jwksFile',
  'issuer',
  'audience',
  'usernameClaim',
] as const;

/** The settings the `[oauth]` table takes. */
export const OAUTH_KEYS: readonly string[] = [...STRING_KEYS, 'timeoutMs'];

function checkUrl(url: string, key: string, source: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${source}: [oauth] ${key} is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(`${source}: [oauth] ${key} must be an http or https URL`);
  }
}

/** Validates the `[oauth]` table of a config file. */
export function parseOAuthTable(value: unknown, source: string): OAuthConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source}: [oauth] must be a table`);
  }
  const table = value as Record<string, unknown>;
  for (const key of Object.keys(table)) {
    if (!OAUTH_KEYS.includes(key)) {
      throw new ConfigError(`${source}: unknown setting "${key}" in [oauth]`);
    }
  }
  const str = (key: (typeof STRING_KEYS)[number]): string | undefined => {
    const v = table[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') {
      throw new ConfigError(`${source}: [oauth] ${key} must be a non-empty string`);
    }
    return v;
  };
  const timeout = table['timeoutMs'];
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1)) {
    throw new ConfigError(`${source}: [oauth] timeoutMs must be a whole number of milliseconds`);
  }
  const config: OAuthConfig = {
    introspectionUrl: str('introspectionUrl'),
    clientId: str('clientId'),
    clientSecret: str('clientSecret'),
    clientSecretFile: str('clientSecretFile'),
    jwksUrl: str('jwksUrl'),
    jwksFile: str('jwksFile'),
    issuer: str('issuer'),
    audience: str('audience'),
    usernameClaim: str('usernameClaim'),
    timeoutMs: timeout,
  };
  const sources = [config.introspectionUrl, config.jwksUrl, config.jwksFile].filter((s) => s !== undefined);
  if (sources.length !== 1) {
    throw new ConfigError(`${source}: [oauth] needs exactly one of introspectionUrl, jwksUrl and jwksFile`);
  }
  if (config.clientSecret !== undefined && config.clientSecretFile !== undefined) {
    throw new ConfigError(`${source}: [oauth] clientSecret and clientSecretFile exclude each other`);
  }
  const hasSecret = config.clientSecret !== undefined || config.clientSecretFile !== undefined;
  if (config.introspectionUrl !== undefined) {
    checkUrl(config.introspectionUrl, 'introspectionUrl', source);
    if (hasSecret && config.clientId === undefined) {
      throw new ConfigError(`${source}: [oauth] a client secret needs clientId`);
    }
  } else {
    if (config.clientId !== undefined || hasSecret) {
      throw new ConfigError(`${source}: [oauth] clientId and the client secret go with introspectionUrl`);
    }
    // Without an audience, a token the issuer made for any other service would open mailboxes.
    if (config.audience === undefined) {
      throw new ConfigError(`${source}: [oauth] audience is required with jwksUrl or jwksFile`);
    }
    if (config.jwksUrl !== undefined) checkUrl(config.jwksUrl, 'jwksUrl', source);
  }
  return config;
}
