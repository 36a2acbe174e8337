import type { Pop3Limits } from './limits.js';
import { en } from './text/en.js';

/** The limits a connection is admitted under. */
export type ConnectionLimits = Pick<Pop3Limits, 'maxConnections' | 'maxConnectionsPerIp'>;

/**
 * Why a connection was refused: the text of its `-ERR [SYS/TEMP]` line, in English (no language
 * was chosen yet: `i-default`, RFC 6856 section 3), from the catalogue.
 */
export const ConnectionRefusal = {
  total: en.tooManyConnections(),
  perAddress: en.tooManyConnectionsFromAddress(),
  /** The counts are kept elsewhere (a daemon's primary) and did not answer in time: refused, to be safe. */
  unavailable: en.serverBusy(),
} as const;
export type ConnectionRefusal = string;

/**
 * Where open connections are counted: in all, and by address key (`addressKey`: an IPv4 address,
 * or an IPv6 /64). One process counts its own ({@link LocalConnectionSlots}); the daemon's workers
 * ask the primary, so that the limits hold for the whole machine.
 */
export interface ConnectionSlots {
  /** Takes a slot for a connection from `key`, or says which limit refuses it (and takes nothing). */
  take(
    key: string,
    limits: ConnectionLimits,
  ): ConnectionRefusal | undefined | Promise<ConnectionRefusal | undefined>;
  /** Gives back a slot that {@link take} gave. */
  release(key: string): void;
}

/** Open connections of one process, counted in memory. */
export class LocalConnectionSlots implements ConnectionSlots {
  readonly #byKey = new Map<string, number>();
  #total = 0;

  /** Open connections in all. */
  get total(): number {
    return this.#total;
  }

  /** Open connections from `key`. */
  count(key: string): number {
    return this.#byKey.get(key) ?? 0;
  }

  take(key: string, limits: ConnectionLimits): ConnectionRefusal | undefined {
    if (this.#total >= limits.maxConnections) return ConnectionRefusal.total;
    const open = this.#byKey.get(key) ?? 0;
    if (open >= limits.maxConnectionsPerIp) return ConnectionRefusal.perAddress;
    this.#byKey.set(key, open + 1);
    this.#total += 1;
    return undefined;
  }

  release(key: string): void {
    const open = this.#byKey.get(key);
    if (open === undefined) return;
    if (open <= 1) this.#byKey.delete(key);
    else this.#byKey.set(key, open - 1);
    this.#total -= 1;
  }
}
