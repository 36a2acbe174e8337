/**
 * What the dashboard's server sends its page: `GET /api/state` answers an {@link InitialState},
 * and `GET /api/events` (Server-Sent Events) pushes an {@link Update} as `event: update` after
 * every sample. Shared by the server (src/dashboard) and the page (src/dashboard/web): plain data,
 * no DOM and no Node.
 */

/** The figures of one sample; every one is a rate per second over the sample's step, but `open`. */
export const SERIES_KEYS = [
  /** Connections open at the sample's time. */
  'open',
  /** New connections per second. */
  'connections',
  'loginsOk',
  'loginsFailed',
  /** Login answers the login throttle held back. */
  'loginsThrottled',
  /** Bytes sent to clients per second. */
  'bytesOut',
  /** RETR commands per second (messages retrieved). */
  'retr',
  /** Messages deleted per second (DELE, committed or not). */
  'dele',
] as const;

export type SeriesKey = (typeof SERIES_KEYS)[number];

/** One sample: `t` its end in milliseconds since 1970, and the figures over the step before it. */
export type Point = { readonly t: number } & { readonly [K in SeriesKey]: number };

/** A window of samples, oldest first, in columns (uPlot's shape): `t` in seconds since 1970. */
export interface Series {
  /** Time between two samples, in milliseconds. */
  readonly stepMs: number;
  /** How much time the window keeps, in milliseconds (15 minutes, 24 hours). */
  readonly spanMs: number;
  readonly t: readonly number[];
  readonly values: { readonly [K in SeriesKey]: readonly number[] };
}

export interface SessionRow {
  /** Unique among the rows: where the session runs and its id there. */
  readonly key: string;
  /** Absent before login. */
  readonly user: string | null;
  readonly address: string;
  /** AUTHORIZATION, TRANSACTION or UPDATE. */
  readonly state: string;
  /** When it connected, in milliseconds since 1970. */
  readonly since: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The worker process (`worker 1234`), the node (`node-a`), both, or `this process`. */
  readonly where: string;
}

/** A maildrop lock held by a session. */
export interface LockRow {
  readonly user: string;
  /** The session holding it: its address and where it runs. */
  readonly holder: string;
  readonly since: number;
}

export interface TopUser {
  readonly user: string;
  /** Bytes sent to this user's sessions in the last 24 hours (or since start, if less). */
  readonly bytes: number;
}

export interface Facts {
  readonly version: string;
  /** Milliseconds since 1970. */
  readonly startedAt: number;
  /** POP3 worker processes on this node (1: the POP3 server runs in the daemon's process). */
  readonly workers: number;
  /** With `--cluster`: every node that answered; empty otherwise. */
  readonly nodes: readonly string[];
  /** With `--cluster`: nodes that did not answer in time, left out of the figures. */
  readonly nodesMissing: readonly string[];
  /** The effective configuration, summed up: label and value, no secrets. */
  readonly config: readonly (readonly [string, string])[];
  /** The POP3 certificate (the default one); null without TLS. */
  readonly certificate: { readonly subject: string; readonly notAfter: number } | null;
}

/** What every message carries. */
export interface Live {
  /** The server's clock, milliseconds since 1970. */
  readonly now: number;
  /** Sessions open in all; `sessions` holds at most the first few hundred, oldest first. */
  readonly sessionsTotal: number;
  readonly sessions: readonly SessionRow[];
  readonly locks: readonly LockRow[];
  /** Most bytes first, at most 10. */
  readonly topUsers: readonly TopUser[];
  readonly facts: Facts;
}

export interface InitialState extends Live {
  /** The admin who logged in. */
  readonly admin: string;
  /** Sent back in the `x-poplar-csrf` header of `POST /api/kick`. */
  readonly csrf: string;
  /** The last 15 minutes, a sample every few seconds. */
  readonly fine: Series;
  /** The last 24 hours, a sample a minute. */
  readonly coarse: Series;
}

/** Pushed after every sample; `fine` and `coarse` hold the samples taken since the last message. */
export interface Update extends Live {
  readonly fine: readonly Point[];
  readonly coarse: readonly Point[];
}

/**
 * `POST /api/kick` with `content-type: application/json`, the `x-poplar-csrf` header, and this
 * body: ends every session of the user, on every worker and node. Answers {@link KickAnswer}.
 */
export interface KickRequest {
  readonly user: string;
}

export interface KickAnswer {
  readonly ended: number;
}
