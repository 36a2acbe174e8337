import { ConfigError } from '../../errors.js';
import { cramMd5 } from './cram-md5.js';
import { login } from './login.js';
import { oauthBearer, xoauth2 } from './oauth.js';
import { plain } from './plain.js';
import { scramSha256 } from './scram-sha-256.js';
import type { SaslMechanism } from './types.js';

export type { SaslContext, SaslExchange, SaslMechanism, SaslStep } from './types.js';
export { SaslError } from './types.js';
export { createCramMd5, cramMd5, type CramMd5Options } from './cram-md5.js';
export { createScramSha256, scramSha256, type ScramSha256Options } from './scram-sha-256.js';
export { oauthBearer, xoauth2 } from './oauth.js';
export { login } from './login.js';
export { plain } from './plain.js';

/**
 * Every mechanism Poplar implements, in the order CAPA lists them: strongest first (the server
 * never sees the password, then never the password itself, then the cleartext ones), since some
 * clients take the first they know.
 */
export const MECHANISMS: readonly SaslMechanism[] = [
  scramSha256,
  cramMd5,
  plain,
  login,
  oauthBearer,
  xoauth2,
];

/** The name of one of Poplar's SASL mechanisms, as CAPA lists it. */
export type SaslMechanismName = 'SCRAM-SHA-256' | 'CRAM-MD5' | 'PLAIN' | 'LOGIN' | 'OAUTHBEARER' | 'XOAUTH2';

/**
 * The mechanisms offered, by name, in the order given (all of {@link MECHANISMS} by default). A
 * name Poplar does not implement is a {@link ConfigError}.
 */
export function mechanismMap(names?: readonly SaslMechanismName[]): ReadonlyMap<string, SaslMechanism> {
  if (names === undefined) return new Map(MECHANISMS.map((m) => [m.name, m]));
  const chosen = new Map<string, SaslMechanism>();
  for (const name of names) {
    const mechanism = MECHANISMS.find((m) => m.name === name);
    if (mechanism === undefined) throw new ConfigError(`unknown SASL mechanism ${JSON.stringify(name)}`);
    chosen.set(name, mechanism);
  }
  return chosen;
}
