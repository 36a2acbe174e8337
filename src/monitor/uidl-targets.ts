import { Pop3Error, RespCode } from '../errors.js';
import { MonitorRefusal, type MonitorExtensions } from './extensions.js';
import { MAX_DLEN } from './protocol/messages.js';

/**
 * CONFIG 0x08 `importUidl` and GET 0x24 `uidl` (docs/monitor-protocol.md, docs/migration.md): a
 * user's UIDLs imported from another server, and the UIDL of every message with its source.
 */

/** What the targets need of the mail store (the daemon's Maildir store). */
export interface UidlBackend {
  import(
    user: string,
    lines: string,
  ): Promise<{ imported: number; unknown: number; invalid: number; clashes: number }>;
  describe(user: string): Promise<readonly { uidl: string; file: string; source: string }[]>;
  /** The maildrop's UIDL history, oldest first (docs/migration.md). */
  history(user: string): Promise<readonly UidlHistoryLine[]>;
}

/** One entry of the UIDL history, as GET 0x24 answers it on its first page. */
export interface UidlHistoryLine {
  readonly at: number;
  readonly event: string;
  readonly messages: number;
  readonly fingerprint: string;
  readonly note: string;
}

/** A store error as the monitor's refusal: `[IN-USE]` means a session has the maildrop. */
function refused(error: unknown): never {
  if (error instanceof Pop3Error && error.code === RespCode.inUse) {
    throw new MonitorRefusal('the user has a POP3 session open: try again once it ends');
  }
  if (error instanceof Pop3Error && error.code === RespCode.sysPerm) throw new MonitorRefusal(error.message);
  throw error;
}

/** DATA's first line (the user name) and the rest. */
function split(data: Buffer): { user: string; rest: string } {
  const text = data.toString('utf8');
  const newline = text.indexOf('\n');
  const user = newline === -1 ? text : text.slice(0, newline);
  if (user === '') throw new MonitorRefusal('no user name');
  return { user, rest: newline === -1 ? '' : text.slice(newline + 1) };
}

/**
 * One page of `uidl`: `{"user","count","from","messages":[{"uidl","file","source"}],"isTruncated"}`
 * with as many messages from `from` on as fit DLEN; the first page also has `history` (at most 50
 * short entries, so it always fits).
 */
export function uidlPage(
  user: string,
  messages: readonly { uidl: string; file: string; source: string }[],
  from: number,
  history: readonly UidlHistoryLine[] = [],
): Buffer {
  const page: { uidl: string; file: string; source: string }[] = [];
  const empty = {
    user,
    count: messages.length,
    from,
    ...(from === 0 ? { history } : {}),
    messages: [],
    isTruncated: false,
  };
  let bytes = Buffer.byteLength(JSON.stringify(empty)) + 1;
  for (const m of messages.slice(from)) {
    const cost = Buffer.byteLength(JSON.stringify(m)) + 1;
    if (bytes + cost > MAX_DLEN) break;
    bytes += cost;
    page.push(m);
  }
  const isTruncated = from + page.length < messages.length;
  return Buffer.from(JSON.stringify({ ...empty, messages: page, isTruncated }));
}

/** The two targets, to merge into `MonitorBackends.extensions`. */
export function uidlTargets(backend: UidlBackend): MonitorExtensions {
  return {
    config: {
      importUidl: async (data) => {
        const { user, rest } = split(data);
        const counts = await backend.import(user, rest).catch(refused);
        return Buffer.from(JSON.stringify({ user, ...counts }));
      },
    },
    get: {
      uidl: async (data) => {
        const { user, rest } = split(data);
        const from = rest === '' ? 0 : Number(rest);
        if (!Number.isSafeInteger(from) || from < 0) throw new MonitorRefusal('bad page start');
        const messages = await backend.describe(user).catch(refused);
        const history = from === 0 ? await backend.history(user).catch(refused) : [];
        return uidlPage(user, messages, from, history);
      },
    },
  };
}
