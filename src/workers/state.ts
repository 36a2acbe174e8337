import type { Pop3Limits } from '../pop3/limits.js';
import type { Pop3TlsOptions } from '../pop3/tls.js';

/**
 * What the primary tells a worker that is starting, before the worker builds its server and
 * listens: the state in force now (limits and mail root changed through the monitor or by SIGHUP
 * since start), not the one the daemon started with. `settings` is the CLI's own data (its
 * configuration, which src/workers does not read).
 */
export interface WorkerState {
  readonly limits: Pop3Limits;
  readonly root: string;
  readonly settings: unknown;
}

/** Messages of the start-up handshake, outside the numbered requests: asked once, told once. */
export type StartingMessage = { readonly kind: 'starting' };
export type StateMessage = { readonly kind: 'state'; readonly state: WorkerState };

/** What SIGHUP changes in a running worker besides re-reading the users file; absent: unchanged. */
export interface LiveChanges {
  readonly logLevel?: string;
  readonly limits?: Partial<Pop3Limits>;
  readonly tls?: TlsData;
}

/** Certificates as the IPC channel carries them (JSON: PEM bytes as base64). */
export interface TlsData {
  readonly key: string;
  readonly cert: string;
  readonly sni: Readonly<Record<string, { readonly key: string; readonly cert: string }>>;
}

const text = (pem: string | Buffer): string => Buffer.from(pem).toString('base64');
const bytes = (base64: string): Buffer => Buffer.from(base64, 'base64');

export function encodeTls(tls: Pop3TlsOptions): TlsData {
  const sni: Record<string, { key: string; cert: string }> = {};
  for (const [name, c] of Object.entries(tls.sni ?? {})) sni[name] = { key: text(c.key), cert: text(c.cert) };
  return { key: text(tls.key), cert: text(tls.cert), sni };
}

export function decodeTls(data: TlsData): Pop3TlsOptions {
  const sni: Record<string, { key: Buffer; cert: Buffer }> = {};
  for (const [name, c] of Object.entries(data.sni)) sni[name] = { key: bytes(c.key), cert: bytes(c.cert) };
  return { key: bytes(data.key), cert: bytes(data.cert), sni };
}
