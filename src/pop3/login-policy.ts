import { RespCode } from '../errors.js';
import { textError } from './text/index.js';
import type { SaslMechanism } from './sasl/types.js';
import type { Session } from './session.js';

/** Refuses a cleartext login where it could be sniffed (RFC 8314 section 3, RFC 2595 section 2.4). */
export function requireSafeChannel(session: Session): void {
  if (session.mayLogInCleartext) return;
  throw textError(
    session.engine.tls === undefined ? 'cleartextRefused' : 'cleartextRefusedSendStls',
    [],
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
