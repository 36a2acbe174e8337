import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

/**
 * The client side of SCRAM-SHA-256 (RFC 5802 section 3), written out for the tests from the RFC's
 * formulas: Poplar's server code is not used.
 */
export interface ScramKeys {
  readonly saltedPassword: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

export function scramKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const saltedPassword = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  return {
    saltedPassword,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: hmac(saltedPassword, 'Server Key'),
  };
}

export interface ScramClientFinal {
  /** client-final-message, with the proof. */
  readonly message: string;
  /** The `v=` server-final-message the server must send. */
  readonly expectedServerFinal: string;
}

/** Parses server-first-message and makes client-final-message for `password`. */
export function scramClientFinal(options: {
  readonly password: string;
  readonly gs2Header: string;
  readonly clientFirstBare: string;
  readonly serverFirst: string;
}): ScramClientFinal {
  const fields = new Map(options.serverFirst.split(',').map((f) => [f.slice(0, 1), f.slice(2)]));
  const nonce = fields.get('r') ?? '';
  const salt = Buffer.from(fields.get('s') ?? '', 'base64');
  const iterations = Number(fields.get('i'));
  const { saltedPassword, storedKey } = scramKeys(options.password, salt, iterations);
  const withoutProof = `c=${Buffer.from(options.gs2Header).toString('base64')},r=${nonce}`;
  const authMessage = `${options.clientFirstBare},${options.serverFirst},${withoutProof}`;
  const clientKey = hmac(saltedPassword, 'Client Key');
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ (clientSignature[i] ?? 0)));
  const serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
  return {
    message: `${withoutProof},p=${proof.toString('base64')}`,
    expectedServerFinal: `v=${serverSignature.toString('base64')}`,
  };
}
