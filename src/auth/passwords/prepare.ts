import { saslprep } from '@mongodb-js/saslprep';

// eslint-disable-next-line no-control-regex -- ASCII, control characters included
const ASCII = /^[\x00-\x7f]*$/;

/**
 * A password in the form Poplar hashes and checks, the same when it is stored (`hash-password`, the
 * monitor's user changes) and at every login: SASLprep (RFC 4013), as SASL PLAIN (RFC 4616) and
 * USER/PASS in UTF-8 mode (RFC 6856 section 2.2) ask, so that a password typed composed or
 * decomposed, or with a no-break space, matches one hash. Unassigned code points are allowed on both
 * sides (a query string, RFC 6856's reading for PASS; emoji are unassigned in SASLprep's Unicode
 * 3.2). An ASCII password is left exactly as it is (SASLprep would refuse a tab that a password
 * stored before could hold), so every ASCII hash keeps matching. Undefined: SASLprep refuses the
 * password (a prohibited character such as a bidirectional control, or right-to-left letters mixed
 * with left-to-right ones); it can be neither stored nor match.
 */
export function preparePassword(password: string): string | undefined {
  if (ASCII.test(password)) return password;
  try {
    const prepared = saslprep(password, { allowUnassigned: true });
    return prepared === '' ? undefined : prepared;
  } catch {
    return undefined;
  }
}

/** Thrown by `hashPassword` for a password SASLprep refuses. */
export class PasswordRefusedError extends Error {
  override name = 'PasswordRefusedError';
  constructor() {
    super(
      'the password holds characters SASLprep (RFC 4013) refuses: a bidirectional or other control, or mixed directions',
    );
  }
}
