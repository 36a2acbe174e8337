import { createHash, createHmac, randomBytes } from 'node:crypto';
import { safeEqual } from './compare.js';
import type { AuthResult } from './types.js';

/**
 * A greeting's APOP timestamp (RFC 1939 section 7), in msg-id form: random hex and the time in
 * seconds, `@domain`. Unlike the RFC's example it shows no process id, connection counter or host
 * name (the domain is only what the operator configured), so it says nothing about the server.
 */
export function apopTimestamp(domain: string): string {
  return `<${randomBytes(12).toString('hex')}.${Math.floor(Date.now() / 1000)}@${domain}>`;
}

/**
 * A CRAM-MD5 challenge (RFC 2195 section 2), in msg-id form like the RFC's
 * `<1896.697170952@postoffice.reston.mci.net>`, but both numbers are random: no process id, no clock.
 */
export function cramMd5Challenge(domain: string): string {
  const random = randomBytes(12);
  return `<${random.readBigUInt64BE()}.${random.readUInt32BE(8)}@${domain}>`;
}

/** The APOP digest (RFC 1939 section 7): hex MD5 of the greeting timestamp followed by the secret. */
export function apopDigest(timestamp: string, secret: string): string {
  return createHash('md5')
    .update(timestamp + secret, 'utf8')
    .digest('hex');
}

/** The CRAM-MD5 digest (RFC 2195): lower-case hex HMAC-MD5 of the challenge, keyed with the secret. */
export function cramMd5Digest(challenge: string, secret: string): string {
  return createHmac('md5', Buffer.from(secret, 'utf8')).update(challenge, 'utf8').digest('hex');
}

/**
 * A challenge-response login (APOP, CRAM-MD5) against a stored shared secret, compared in constant
 * time. No secret, or an empty one (which would make the digest computable from the challenge
 * alone), never matches, after the same work.
 */
export function checkDigest(
  username: string,
  secret: string | undefined,
  digest: string,
  expected: (secret: string) => string,
): AuthResult {
  const usable = secret === '' ? undefined : secret;
  const isMatch = safeEqual(expected(usable ?? '\0'), digest) && usable !== undefined;
  return isMatch ? { ok: true, user: { name: username } } : { ok: false, reason: 'invalid' };
}
