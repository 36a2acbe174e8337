/**
 * Dovecot's `dovecot-uidlist`, read to serve a maildrop Dovecot served with the UIDLs Dovecot gave
 * (docs/migration.md). Versions:
 * - 1 (Dovecot up to 1.0, and Courier's `courierimapuiddb`): header `1 <uidvalidity> <next uid>`,
 *   lines `<uid> <file name>`.
 * - 3 (Dovecot 1.1 and later): header `3` then fields `<key><value>` (`V` uidvalidity, `N` next uid,
 *   `G` mailbox GUID), lines `<uid> [<key><value> ...] :<file name>`; a line's keys are capital
 *   letters: `P` the POP3 UIDL recorded by an earlier migration, `W` and `S` sizes, `G` the GUID.
 * Version 2 was written only by development versions of Dovecot 1.0 and is refused by Dovecot 2, so
 * it is refused here too. The file name is the name the file had when Dovecot listed it: its base
 * (before `:2,`) is the message's. Dovecot's POP3 UIDL is the `P` field when there is one, else
 * `pop3_uidl_format`, whose default `%08Xu%08Xv` is the uid and the uidvalidity in 8 upper-case
 * hexadecimal digits each.
 */

/** The file Dovecot keeps in a maildir. */
export const DOVECOT_UIDLIST = 'dovecot-uidlist';

/** One message of a `dovecot-uidlist`. */
export interface DovecotRecord {
  readonly uid: number;
  /** The base of the file name (before `:2,`). */
  readonly base: string;
  /** The UIDL Dovecot served: `P`, or the default format. */
  readonly uidl: string;
}

export interface DovecotUidlist {
  readonly uidValidity: number;
  /** In uid order; a file name listed twice keeps its last uid, as Dovecot does. */
  readonly records: readonly DovecotRecord[];
  /** Lines left out (damaged, or a UIDL that is not a valid unique-id), with the first reason. */
  readonly skipped: number;
  readonly firstProblem: string | undefined;
}

/** A damaged file: its header or its order cannot be trusted, so no line of it is. */
export class DamagedUidlistError extends Error {
  override name = 'DamagedUidlistError';
}

const MAX_UID = 0xfffffffe; // Dovecot: a uid of 2^32-1 is "too high"
const UIDL_SAFE = /^[\x21-\x7e]{1,70}$/;

/** Dovecot's default `pop3_uidl_format`, `%08Xu%08Xv`. */
export function dovecotDefaultUidl(uid: number, uidValidity: number): string {
  const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
  return `${hex8(uid)}${hex8(uidValidity)}`;
}

/** Whether a string may be served as a UIDL (RFC 1939: 1 to 70 characters in 0x21-0x7E). */
export function isValidUidl(uidl: string): boolean {
  return UIDL_SAFE.test(uidl);
}

const baseOf = (name: string): string => {
  const colon = name.indexOf(':');
  return colon === -1 ? name : name.slice(0, colon);
};

function decimal(text: string): number | undefined {
  return /^[0-9]{1,10}$/.test(text) ? Number(text) : undefined;
}

/** The header's uidvalidity; throws {@link DamagedUidlistError}. */
function parseHeader(header: string): { version: 1 | 3; uidValidity: number } {
  const version = header.slice(0, 2);
  if (version === '1 ') {
    const [validity = '', next = '', ...rest] = header.slice(2).split(' ');
    const uidValidity = decimal(validity);
    if (uidValidity === undefined || decimal(next) === undefined || rest.length > 0 || uidValidity === 0) {
      throw new DamagedUidlistError('damaged version 1 header');
    }
    return { version: 1, uidValidity };
  }
  if (version === '3 ' || header === '3') {
    let uidValidity: number | undefined;
    let next: number | undefined;
    for (const field of header.slice(2).split(' ')) {
      if (field === '') continue;
      if (field[0] === 'V') uidValidity = decimal(field.slice(1));
      else if (field[0] === 'N') next = decimal(field.slice(1));
    }
    if (uidValidity === undefined || uidValidity === 0 || next === undefined || next === 0) {
      throw new DamagedUidlistError('header without a valid uidvalidity (V) or next uid (N)');
    }
    return { version: 3, uidValidity };
  }
  throw new DamagedUidlistError(`unsupported version ${JSON.stringify(header.slice(0, 8))}`);
}

/**
 * Reads a `dovecot-uidlist`'s text; throws {@link DamagedUidlistError} when its header is damaged
 * or its uids are not in ascending order (Dovecot then deletes the file and numbers the mail again:
 * its UIDLs were lost there too). A damaged line is left out and counted.
 */
export function parseDovecotUidlist(text: string): DovecotUidlist {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const { version, uidValidity } = parseHeader(lines[0] ?? '');
  const byBase = new Map<string, DovecotRecord>();
  let skipped = 0;
  let firstProblem: string | undefined;
  const skip = (lineNo: number, why: string): void => {
    skipped++;
    firstProblem ??= `line ${lineNo}: ${why}`;
  };
  let previousUid = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const space = line.indexOf(' ');
    const uid = decimal(space === -1 ? line : line.slice(0, space));
    if (uid === undefined || uid === 0 || uid > MAX_UID) {
      skip(i + 1, 'no valid uid');
      continue;
    }
    if (uid <= previousUid) throw new DamagedUidlistError(`line ${i + 1}: uids not in ascending order`);
    previousUid = uid;
    let rest = line.slice(space + 1).replace(/^ +/, '');
    let pop3Uidl: string | undefined;
    if (version === 3) {
      const colon = rest.startsWith(':') ? 0 : rest.indexOf(' :');
      if (colon === -1) {
        skip(i + 1, 'no file name');
        continue;
      }
      // A field whose key is not a capital letter is dropped, the line kept (as Dovecot does).
      const fields = rest.slice(0, colon).split(' ');
      const p = fields.find((f) => f.startsWith('P'));
      if (p !== undefined && p.length > 1) pop3Uidl = p.slice(1);
      rest = rest.slice(colon === 0 ? 1 : colon + 2);
    }
    if (rest === '' || rest.includes('/')) {
      skip(i + 1, 'no valid file name');
      continue;
    }
    const uidl = pop3Uidl ?? dovecotDefaultUidl(uid, uidValidity);
    if (!isValidUidl(uidl)) {
      skip(i + 1, 'its P UIDL is not a valid unique-id (1-70 characters in 0x21-0x7E)');
      continue;
    }
    const base = baseOf(rest);
    byBase.delete(base); // listed again with a new uid: Dovecot keeps the later line
    byBase.set(base, { uid, base, uidl });
  }
  return { uidValidity, records: [...byBase.values()], skipped, firstProblem };
}
