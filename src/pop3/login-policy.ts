import { Pop3Error, RespCode } from '../errors.js';
import type { SaslMechanism } from './sasl/types.js';
import type { Session } from './session.js';

/** Refuses a cleartext login where it could be sniffed (RFC 8314 section 3, RFC 2595 section 2.4). */
export function requireSafeChannel(session: Session): void {
  if (session.mayLogInCleartext) return;
  const hint = session.engine.tls === undefined ? '' : ': send STLS first';
  throw new Pop3Error(
    `cleartext login refused on an unencrypted connection, TLS is required${hint}`,
    RespCode.auth,
  );
}

/** The SASL mechanisms this session may use now, in CAPA order. */
export function usableMechanisms(session: Session): SaslMechanism[] {
  const { authenticator, mechanisms } = session.engine;
  return [...mechanisms.values()].filter(
    (m) => m.isAvailable(authenticator) && (!m.isCleartext || session.mayLogInCleartext),
  );
}
