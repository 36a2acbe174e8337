import type { ClosedSessionInfo } from './connection.js';
import type { CommandInfo, ConnectionInfo, LoginInfo, Pop3State } from './session.js';

/** One address for {@link Pop3Server.listen}; call it once per address. */
export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (RFC 8314, POP3S, conventionally port 995): needs the `tls` option. */
  readonly tls?: boolean;
  /** For `::`, whether to refuse IPv4 on the same socket (default true, so `0.0.0.0` can listen too). */
  readonly ipv6Only?: boolean;
}

export interface SessionSnapshot {
  readonly id: string;
  /** Set once logged in. */
  readonly user: string | undefined;
  readonly remoteAddress: string;
  readonly state: Pop3State;
  /** Milliseconds since 1970. */
  readonly startedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** The events a {@link Pop3Server} emits. They observe; they never change what the server does. */
export interface Pop3ServerEvents {
  /** A connection was accepted (after the connection limits). */
  connect: [info: ConnectionInfo];
  /** A connection was refused by a connection limit. */
  refuse: [info: { readonly remoteAddress: string; readonly reason: string }];
  /** A login succeeded and the maildrop is open. */
  login: [info: LoginInfo];
  /** A command finished (verb, result, duration): for metrics. */
  command: [info: CommandInfo];
  /** A connection ended; `summary` says what the session retrieved and deleted. */
  close: [info: ClosedSessionInfo];
}
