import type { Socket } from 'node:net';
import {
  MAX_PROXY_HEADER_BYTES,
  parseProxyHeader,
  ProxyHeaderError,
  type ProxyHeader,
} from './proxy-protocol.js';

/** A plain connection's first bytes were a PROXY header where none may come. */
export class StrayProxyHeaderError extends Error {
  override name = 'StrayProxyHeaderError';
}

/** How reading a header ended: the header, or why there is none. */
export type ProxyHeaderOutcome =
  | { readonly ok: true; readonly header: ProxyHeader }
  | {
      readonly ok: false;
      /** `closed`: the peer left (or reset) first; `timeout`: no complete header in time. */
      readonly reason: 'closed' | 'timeout' | 'invalid';
      /** For `invalid`: what was wrong. */
      readonly error?: ProxyHeaderError;
      /** Bytes received before giving up. */
      readonly receivedBytes: number;
    };

/**
 * Reads exactly one PROXY header from the start of `socket`, within `timeoutMs`, holding at most
 * {@link MAX_PROXY_HEADER_BYTES} (plus the chunk in hand). Whatever came after the header (a
 * pipelined command, a TLS ClientHello) is put back at the front of the socket's buffer
 * (`unshift`), so the next reader gets it once. Never rejects; on failure the socket is left to the
 * caller, who destroys it.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeaderOutcome> {
  return new Promise((resolve) => {
    /** What has arrived so far: at most the bound plus one chunk. */
    let held: Buffer | undefined;
    let received = 0;
    const finish = (outcome: ProxyHeaderOutcome): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
      resolve(outcome);
    };
    const fail = (reason: 'closed' | 'timeout' | 'invalid', error?: ProxyHeaderError): void => {
      finish({ ok: false, reason, receivedBytes: received, ...(error === undefined ? {} : { error }) });
    };
    const onGone = (): void => {
      fail('closed');
    };
    const onReadable = (): void => {
      for (;;) {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) return;
        received += chunk.length;
        const bytes = held === undefined ? chunk : Buffer.concat([held, chunk]);
        held = bytes;
        let header: ProxyHeader | undefined;
        try {
          header = parseProxyHeader(bytes);
        } catch (error) {
          if (error instanceof ProxyHeaderError) {
            fail('invalid', error);
            return;
          }
          throw error;
        }
        if (header === undefined) {
          // The parser decides by this many bytes; this cannot happen, but memory stays bounded.
          if (bytes.length >= MAX_PROXY_HEADER_BYTES) {
            fail('closed');
            return;
          }
          continue;
        }
        if (header.length < bytes.length) socket.unshift(bytes.subarray(header.length));
        finish({ ok: true, header });
        return;
      }
    };
    const timer = setTimeout(() => {
      fail('timeout');
    }, timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onGone);
    socket.once('close', onGone);
    // Also keeps a reset from becoming an uncaught 'error' event while nobody else listens.
    socket.once('error', onGone);
  });
}
