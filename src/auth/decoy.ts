import { createHmac, randomBytes } from 'node:crypto';
import type { ScramCredentials } from './passwords/types.js';

/**
 * Decoys: what a login for a name that does not exist is checked against, so that it looks and
 * costs like a login for one that does. They are derived from a secret with HMAC-SHA-256, so that
 * the same name always gets the same decoy. That secret must be the same in every process that
 * serves the same users and survive restarts (the daemon keeps it in `<maildir>/.poplar-secret`):
 * otherwise a name whose SCRAM salt, say, changes from one connection or one start to the next is
 * a name that does not exist.
 */

/** Bytes of a decoy secret that {@link randomDecoySecret} makes. */
export const DECOY_SECRET_BYTES = 32;

/** A new random decoy secret. Used per server or authenticator when none is given. */
export function randomDecoySecret(): Buffer {
  return randomBytes(DECOY_SECRET_BYTES);
}

/** Throws a RangeError unless `secret` is a usable decoy secret (16 bytes or more). */
export function checkedDecoySecret(secret: Uint8Array): Buffer {
  if (secret.length < 16)
    throw new RangeError(`a decoy secret needs at least 16 bytes, got ${secret.length}`);
  return Buffer.from(secret);
}

/** HMAC-SHA-256 of `label NUL name` under `secret`: 32 bytes that only the secret's holder can predict. */
export function decoyBytes(secret: Uint8Array, label: string, name: string): Buffer {
  return createHmac('sha256', secret).update(`${label}\0${name}`, 'utf8').digest();
}

/** The SCRAM-SHA-256 salt a name gets from `secret`: a decoy's, or a StaticAuthenticator user's. */
export function scramSaltFor(secret: Uint8Array, name: string): Buffer {
  return decoyBytes(secret, 'salt', name).subarray(0, 16);
}

/**
 * Made-up SCRAM-SHA-256 credentials for a name with none: the salt as {@link scramSaltFor}, keys
 * that no proof can match (and that are never accepted anyway), and `iterations`.
 */
export function scramDecoy(secret: Uint8Array, name: string, iterations: number): ScramCredentials {
  return {
    iterations,
    salt: scramSaltFor(secret, name),
    storedKey: decoyBytes(secret, 'stored key', name),
    serverKey: decoyBytes(secret, 'server key', name),
  };
}

/** Points on the ring per item: more make the share of names each item gets more even. */
const RING_POINTS = 8;

/**
 * Picks, for any name, one of `items` in a way that only the secret's holder can predict, that
 * never changes for a name while the items stay, and that moves few names when one item is added
 * or removed (a hash ring: each item sits at {@link RING_POINTS} HMACs of its key, a name goes to
 * the first point at or after the HMAC of the name). Over many names every item is picked about
 * equally often.
 */
export class DecoyRing<T> {
  readonly #points: readonly { readonly point: string; readonly item: T }[];
  readonly #secret: Uint8Array;

  constructor(secret: Uint8Array, items: Iterable<readonly [key: string, item: T]>) {
    this.#secret = secret;
    this.#points = [...items]
      .flatMap(([key, item]) =>
        Array.from({ length: RING_POINTS }, (_, i) => ({
          point: decoyBytes(secret, `ring ${i}`, key).toString('hex'),
          item,
        })),
      )
      .sort((a, b) => (a.point < b.point ? -1 : a.point > b.point ? 1 : 0));
  }

  /** The item for `name`; undefined when there are none. */
  pick(name: string): T | undefined {
    const points = this.#points;
    if (points.length === 0) return undefined;
    const target = decoyBytes(this.#secret, 'name', name).toString('hex');
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((points[middle]?.point ?? '') < target) low = middle + 1;
      else high = middle;
    }
    return (points[low] ?? points[0])?.item;
  }
}
