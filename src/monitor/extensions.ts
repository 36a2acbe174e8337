import type { ConfigTarget, GetTarget } from './protocol/messages.js';

/**
 * A target served outside `handlers.ts` (issue 15's user info, UIDL mapping, app passwords): it
 * gets DATA as sent, after the token was checked, and resolves to the answer's DATA (empty: the
 * protocol's one `0x00` byte). It throws {@link MonitorRefusal} to answer status `0x04`; any
 * other error answers `0x06` and is logged.
 */
export type MonitorTargetHandler = (data: Buffer, context: { readonly admin: string }) => Promise<Buffer>;

/** The extension targets a server serves; a target left out answers `0x03` (invalid target). */
export interface MonitorExtensions {
  readonly get?: Partial<Record<GetTarget, MonitorTargetHandler>>;
  readonly config?: Partial<Record<ConfigTarget, MonitorTargetHandler>>;
}

/** An expected refusal (status `0x04`), with a reason for the log. */
export class MonitorRefusal extends Error {
  override name = 'MonitorRefusal';
}

/** The longest name, secret or label a monitor request carries (the C protocol's field size). */
export const MAX_FIELD_BYTES = 255;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** DATA as one UTF-8 field without NUL, of 1 to `maxBytes` bytes; a {@link MonitorRefusal} otherwise. */
export function monitorField(data: Buffer, what: string, maxBytes: number = MAX_FIELD_BYTES): string {
  if (data.length === 0 || data.length > maxBytes)
    throw new MonitorRefusal(`${what} must be 1 to ${maxBytes} bytes`);
  if (data.includes(0)) throw new MonitorRefusal(`${what} contains NUL`);
  try {
    return utf8.decode(data);
  } catch {
    throw new MonitorRefusal(`${what} is not UTF-8`);
  }
}
