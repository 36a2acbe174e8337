/**
 * The monitor protocol, version 1 (docs/monitor-protocol.md): one binary request per TCP
 * connection, one response in a single write, then the server closes. Pure definitions, no I/O.
 */

export const PROTOCOL_VERSION = 0x01;
export const TOKEN_BYTES = 16;
/** VER(1) TOKEN(16) TYPE(1) TARGET(1) DLEN(2). */
export const REQUEST_HEADER_BYTES = 21;
/** STATUS(1) DLEN(2). */
export const RESPONSE_HEADER_BYTES = 3;
/** DLEN is a uint16. */
export const MAX_DLEN = 0xffff;

export const RequestType = { get: 0x00, config: 0x01 } as const;
export type RequestType = keyof typeof RequestType;

/** GET targets: 0x00-0x02 from version 1 (uint32), the rest Poplar's (uint64, or JSON for 0x20-0x22). */
export const GetTarget = {
  historicConnections: 0x00,
  concurrentConnections: 0x01,
  transferredBytes: 0x02,
  transferredBytes64: 0x03,
  receivedBytes: 0x04,
  authenticatedSessions: 0x05,
  loginsSucceeded: 0x06,
  loginsFailed: 0x07,
  messagesRetrieved: 0x08,
  messagesDeleted: 0x09,
  uptimeSeconds: 0x0a,
  snapshot: 0x20,
  users: 0x21,
  admins: 0x22,
  /** Poplar's (issue 15), DATA a user name, JSON answers: their policy and last logins. */
  userInfo: 0x23,
  /** The user's UIDL mapping and its history. */
  uidl: 0x24,
  /** The user's app passwords (labels, creation, last use; never the secrets). */
  appPasswords: 0x25,
} as const;
export type GetTarget = keyof typeof GetTarget;

export const ConfigTarget = {
  maildir: 0x00,
  chunkSize: 0x01,
  addAdmin: 0x02,
  deleteAdmin: 0x03,
  setUser: 0x04,
  deleteUser: 0x05,
  endSessions: 0x06,
  /** Poplar's: what SIGHUP does; answers JSON `{ applied, needsRestart }`. */
  reload: 0x07,
  /** Poplar's (issue 15): UIDLs imported for a user's messages. */
  importUidl: 0x08,
  /** A new app password for a user; answers JSON with the secret, shown once. */
  addAppPassword: 0x09,
  /** Revokes one app password of a user. */
  revokeAppPassword: 0x0a,
} as const;
export type ConfigTarget = keyof typeof ConfigTarget;

export const Status = {
  ok: 0x00,
  badVersion: 0x01,
  badType: 0x02,
  badTarget: 0x03,
  badData: 0x04,
  authFailed: 0x05,
  serverError: 0x06,
} as const;
export type Status = keyof typeof Status;

/** A request as framed on the wire; DATA is interpreted only after the token has been checked. */
export type MonitorRequest =
  | { readonly type: 'get'; readonly token: Buffer; readonly target: GetTarget; readonly data: Buffer }
  | { readonly type: 'config'; readonly token: Buffer; readonly target: ConfigTarget; readonly data: Buffer };

export interface MonitorResponse {
  readonly status: Status;
  /** Empty means the protocol's one `0x00` byte. */
  readonly data: Buffer;
}

/** Framing errors, with stable codes (like ws's WS_ERR_*). */
export const FrameErrorCode = {
  BAD_VERSION: 'badVersion',
  BAD_TYPE: 'badType',
  BAD_TARGET: 'badTarget',
  TOO_LARGE: 'badData',
} as const;
export type FrameErrorCode = keyof typeof FrameErrorCode;

export class FrameError extends Error {
  override name = 'FrameError';
  readonly code: FrameErrorCode;
  constructor(code: FrameErrorCode, message: string) {
    super(message);
    this.code = code;
  }

  /** The status byte this error is answered with. */
  get status(): Status {
    return FrameErrorCode[this.code];
  }
}

/**
 * A response the client cannot read: its STATUS byte is none of the protocol's. Separate from
 * {@link FrameError}, whose codes are statuses the server answers with.
 */
export class ResponseFrameError extends Error {
  override name = 'ResponseFrameError';
  readonly code = 'BAD_STATUS';
  readonly statusByte: number;
  constructor(statusByte: number) {
    super(`unknown status byte ${statusByte}`);
    this.statusByte = statusByte;
  }
}

/** Reverse lookup: wire byte to name. */
export function nameOf<K extends string>(table: Readonly<Record<K, number>>, byte: number): K | undefined {
  for (const name of Object.keys(table) as K[]) if (table[name] === byte) return name;
  return undefined;
}
