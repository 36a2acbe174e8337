import type { Authenticator } from '../../src/auth/types.js';
import type { SaslContext, SaslExchange, SaslMechanism, SaslStep } from '../../src/pop3/sasl/types.js';

/** The decoy secret of every test SaslContext. */
export const TEST_DECOY_SECRET = Buffer.alloc(32, 7);

/** A SaslContext as the AUTH command builds it, for a loopback connection without TLS. */
export function saslContext(authenticator: Authenticator, hostname = 'poplar.test'): SaslContext {
  return {
    authenticator,
    checkPassword: (request) => authenticator.authenticate(request),
    remoteAddress: '127.0.0.1',
    isTls: false,
    signal: new AbortController().signal,
    hostname,
    decoySecret: TEST_DECOY_SECRET,
    maxPasswordBytes: 1024,
  };
}

/** The challenge bytes of a step; fails the test when the step is not a challenge. */
export function challengeOf(step: SaslStep): Buffer {
  if (step.kind !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(step)}`);
  return step.data;
}

/** The finished step; fails the test when the exchange wants more. */
export function doneOf(step: SaslStep): Extract<SaslStep, { kind: 'done' }> {
  if (step.kind !== 'done') throw new Error(`expected the exchange to be done, got a challenge`);
  return step;
}

/** Starts an exchange of `mechanism` against `authenticator`. */
export function begin(mechanism: SaslMechanism, authenticator: Authenticator): SaslExchange {
  return mechanism.begin(saslContext(authenticator));
}

export const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
export const fromBase64 = (text: string): Buffer => Buffer.from(text, 'base64');
