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
