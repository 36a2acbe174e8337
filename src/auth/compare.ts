import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (data: string | Buffer): Buffer => createHash('sha256').update(data).digest();

/**
 * Compares two secrets in time that depends neither on where they differ nor on their lengths:
 * both are hashed to the same length first.
 */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
