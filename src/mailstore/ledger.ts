/**
 * The per-user ledger (issue 15): when each of the user's sessions began (LOGIN-DELAY), the octets
 * of messages downloaded on the current UTC day (`downloadPerDay`), and the access record, the last
 * {@link LEDGER_MAX_SESSIONS} sessions. The engine reads it before it opens the maildrop and changes
 * it only while it holds the maildrop's lock, so one user's sessions change it one at a time over
 * every worker and node. {@link MemoryUserLedger} holds it in this process (the library's default);
 * the daemon keeps it in the user's maildir (`FileUserLedger`, `.poplar-ledger`). Both run the
 * contract suite in `test/contract/ledger.contract.ts`.
 */

/** Sessions the access record keeps per user: the oldest goes first. */
export const LEDGER_MAX_SESSIONS = 20;
/** Longest text field kept (an address, a method, an app password's label). */
export const LEDGER_MAX_TEXT = 128;

/** One session in the access record. Times are milliseconds since 1970. */
export interface AccessRecord {
  readonly start: number;
  /** Undefined while the session is open (or if its process died before it could say). */
  readonly end?: number | undefined;
  /** The client's address (the PROXY header's, behind a balancer). */
  readonly address: string;
  /** How it logged in: `USER`, `APOP`, `SASL PLAIN`... */
  readonly method: string;
  readonly tls: boolean;
  /** Octets sent to the client in the session, replies included. */
  readonly bytesSent: number;
  /** Octets of messages sent by RETR and TOP (what `downloadPerDay` counts). */
  readonly downloaded: number;
  /** Messages retrieved (RETR) and deleted (committed at QUIT). */
  readonly retrieved: number;
  readonly deleted: number;
  /** The app password's label, when the session logged in with one. */
  readonly appPassword?: string | undefined;
}

export interface LedgerState {
  /** When the user's last session began; undefined: none recorded. */
  readonly lastStart: number | undefined;
  /** The UTC day (`YYYY-MM-DD`) `dayBytes` counts, and the octets downloaded that day. */
  readonly day: string | undefined;
  readonly dayBytes: number;
  /** Oldest first, at most {@link LEDGER_MAX_SESSIONS}. */
  readonly sessions: readonly AccessRecord[];
}

export const EMPTY_LEDGER: LedgerState = { lastStart: undefined, day: undefined, dayBytes: 0, sessions: [] };

export interface UserLedger {
  /** The user's ledger; {@link EMPTY_LEDGER} for a user with none (or a damaged one). */
  read(user: string): Promise<LedgerState>;
  /**
   * Changes the user's ledger (read, `change`, write): called only while the session holds the
   * user's maildrop lock, so that no other session changes it meanwhile.
   */
  update(user: string, change: (state: LedgerState) => LedgerState): Promise<void>;
}

/** The UTC day of `time` as `YYYY-MM-DD`. */
export const utcDay = (time: number): string => new Date(time).toISOString().slice(0, 10);

/** The octets downloaded on the UTC day of `now`, as `state` says. */
export const downloadedOn = (state: LedgerState, now: number): number =>
  state.day === utcDay(now) ? state.dayBytes : 0;

/** `state` with a session begun: its start time, and the record appended (the oldest dropped past the bound). */
export function withSessionStart(state: LedgerState, record: AccessRecord): LedgerState {
  return {
    ...state,
    lastStart: record.start,
    sessions: [...state.sessions, bounded(record)].slice(-LEDGER_MAX_SESSIONS),
  };
}

/**
 * `state` with the session begun at `start` ended: its record completed (found by its start
 * time), and `downloaded` octets added to the day of `now`.
 */
export function withSessionEnd(
  state: LedgerState,
  start: number,
  end: Omit<AccessRecord, 'start' | 'address' | 'method' | 'tls' | 'appPassword'>,
  now: number,
  todayBytes: number,
): LedgerState {
  const day = utcDay(now);
  const dayBytes = downloadedOn(state, now) + todayBytes;
  const i = state.sessions.findLastIndex((s) => s.start === start);
  const found = state.sessions[i];
  const sessions =
    found === undefined ? state.sessions : state.sessions.with(i, bounded({ ...found, ...end }));
  return { ...state, day, dayBytes, sessions };
}

const bounded = (record: AccessRecord): AccessRecord => ({
  ...record,
  address: record.address.slice(0, LEDGER_MAX_TEXT),
  method: record.method.slice(0, LEDGER_MAX_TEXT),
  ...(record.appPassword === undefined ? {} : { appPassword: record.appPassword.slice(0, LEDGER_MAX_TEXT) }),
});

/** Each user's ledger in this process's memory: the library's default, and the tests'. */
export class MemoryUserLedger implements UserLedger {
  readonly #states = new Map<string, LedgerState>();

  /** A ledger that already holds `states` (tests: a session that began a minute ago). */
  constructor(states: Readonly<Record<string, LedgerState>> = {}) {
    for (const [user, state] of Object.entries(states)) this.#states.set(user, state);
  }

  read(user: string): Promise<LedgerState> {
    return Promise.resolve(this.#states.get(user) ?? EMPTY_LEDGER);
  }

  update(user: string, change: (state: LedgerState) => LedgerState): Promise<void> {
    this.#states.set(user, change(this.#states.get(user) ?? EMPTY_LEDGER));
    return Promise.resolve();
  }
}

/**
 * A ledger as stored (JSON), checked field by field: the state, or undefined when anything is
 * missing, of the wrong type or out of bounds (a damaged or hostile file is never trusted in part).
 */
export function parseLedger(value: unknown): LedgerState | undefined {
  if (!isObject(value) || value['v'] !== 1) return undefined;
  const { lastStart, day, dayBytes, sessions } = value;
  if (lastStart !== undefined && !isTime(lastStart)) return undefined;
  if (day !== undefined && (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day))) return undefined;
  if (!isCount(dayBytes) || !Array.isArray(sessions) || sessions.length > LEDGER_MAX_SESSIONS)
    return undefined;
  const records: AccessRecord[] = [];
  for (const s of sessions as unknown[]) {
    if (!isObject(s)) return undefined;
    const { start, end, address, method, tls, bytesSent, downloaded, retrieved, deleted, appPassword } = s;
    if (!isTime(start) || (end !== undefined && !isTime(end))) return undefined;
    if (!isText(address) || !isText(method) || typeof tls !== 'boolean') return undefined;
    if (![bytesSent, downloaded, retrieved, deleted].every(isCount)) return undefined;
    if (appPassword !== undefined && !isText(appPassword)) return undefined;
    records.push({
      start,
      ...(end === undefined ? {} : { end }),
      address,
      method,
      tls,
      bytesSent: bytesSent as number,
      downloaded: downloaded as number,
      retrieved: retrieved as number,
      deleted: deleted as number,
      ...(appPassword === undefined ? {} : { appPassword }),
    });
  }
  return { lastStart, day, dayBytes, sessions: records };
}

/** The state as stored: JSON with a version field. */
export const formatLedger = (state: LedgerState): string => `${JSON.stringify({ v: 1, ...state })}\n`;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = isCount;
const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= LEDGER_MAX_TEXT;
