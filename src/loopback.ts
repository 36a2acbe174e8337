import { isIP } from 'node:net';

/** Whether an address to listen on only accepts connections from this machine. */
export function isLoopbackAddress(address: string): boolean {
  if (address === 'localhost') return true;
  const kind = isIP(address);
  if (kind === 4) return address.startsWith('127.');
  if (kind === 6) {
    const lower = address.toLowerCase();
    return lower === '::1' || lower === '0:0:0:0:0:0:0:1' || lower.startsWith('::ffff:127.');
  }
  return false;
}
