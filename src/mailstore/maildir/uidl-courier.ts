import { isValidUidl } from './uidl-dovecot.js';

/**
 * Courier's POP3 server's list, `courierpop3dsizelist` in the maildir, read to serve a maildrop
 * courier-pop3d served with the UIDLs it gave (docs/migration.md). Forms:
 * - versions 2 and 3: header `/<version> <next uid> <uidvalidity>`, lines
 *   `<file name> <size> <uid>:<uidvalidity>` (version 3 adds `:<utf8 flag>`). The file name may hold
 *   spaces: the last two fields are taken from the right. The UIDL is `UID<uid>-<uidvalidity>`, or
 *   `UID<uid>` when the uidvalidity is 0 (the version 1 form), or, for uid 0, the version 0 form:
 *   the base file name with every byte outside 0x21-0x7E and `'`, `"` and `+` written `+XX`
 *   (upper-case hexadecimal).
 * - the oldest form, without a `/` header: lines `<file name> <size>`, served with the version 0
 *   form. (Today's courier-pop3d ignores such a list and numbers every message again; a maildrop
 *   that still has one was last served by a Courier older than its version 2 list.)
 * Any other header (a version 1, or anything after a `/` that is not two or three numbers) makes
 * courier-pop3d ignore the list, and so does Poplar. Checked against Debian's courier-pop 1.0.16.
 */

export const COURIER_SIZELIST = 'courierpop3dsizelist';

export interface CourierRecord {
  /** The base of the file name (before `:2,`). */
  readonly base: string;
  readonly uidl: string;
}

export interface CourierSizelist {
  /** The header's version; 0 for the oldest form. */
  readonly version: number;
  readonly records: readonly CourierRecord[];
  readonly skipped: number;
  readonly firstProblem: string | undefined;
}

/** A list courier-pop3d itself would ignore. */
export class DamagedSizelistError extends Error {
  override name = 'DamagedSizelistError';
}

const NUMBER = /^[0-9]{1,20}$/;

/** courier-pop3d's version 0 UIDL: the base name, bytes outside 0x21-0x7E and `'"+` as `+XX`. */
export function courierFileNameUidl(base: string): string {
  let uidl = '';
  for (const byte of Buffer.from(base, 'utf8')) {
    const isPlain = byte >= 0x21 && byte <= 0x7e && byte !== 0x27 && byte !== 0x22 && byte !== 0x2b;
    uidl += isPlain ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return uidl;
}

const baseOf = (name: string): string => {
  const colon = name.indexOf(':');
  return colon === -1 ? name : name.slice(0, colon);
};

function parseHeader(line: string): number {
  if (!line.startsWith('/')) return 0;
  const fields = line.slice(1).split(' ');
  const [version, ...numbers] = fields;
  if (
    (version !== '2' && version !== '3') ||
    numbers.length < 1 ||
    numbers.length > 2 ||
    !numbers.every((n) => NUMBER.test(n))
  ) {
    throw new DamagedSizelistError(`unsupported header ${JSON.stringify(line.slice(0, 40))}`);
  }
  return Number(version);
}

/** The UIDL of a version 2 or 3 line's last field, `<uid>:<uidvalidity>[:<utf8>]`; undefined if damaged. */
function uidlOf(field: string, base: string): string | undefined {
  const parts = field.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => NUMBER.test(p))) return undefined;
  const [uid = '', uidv = ''] = parts.map((p) => BigInt(p).toString());
  if (uid === '0') return courierFileNameUidl(base);
  return uidv === '0' ? `UID${uid}` : `UID${uid}-${uidv}`;
}

/** Reads a `courierpop3dsizelist`'s text; throws {@link DamagedSizelistError} when Courier would ignore it. */
export function parseCourierSizelist(text: string): CourierSizelist {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const version = parseHeader(lines[0] ?? '');
  const byBase = new Map<string, CourierRecord>();
  let skipped = 0;
  let firstProblem: string | undefined;
  for (let i = version === 0 ? 0 : 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const last = line.lastIndexOf(' ');
    const beforeLast = version === 0 ? last : line.lastIndexOf(' ', last - 1);
    const name = line.slice(0, beforeLast);
    const size = line.slice(beforeLast + 1, version === 0 ? undefined : last);
    const base = baseOf(name);
    const uidl =
      beforeLast <= 0 || !NUMBER.test(size) || name.includes('/')
        ? undefined
        : version === 0
          ? courierFileNameUidl(base)
          : uidlOf(line.slice(last + 1), base);
    if (uidl === undefined || !isValidUidl(uidl)) {
      skipped++;
      firstProblem ??= `line ${i + 1}: damaged, or its UIDL is not a valid unique-id`;
      continue;
    }
    byBase.set(base, { base, uidl });
  }
  return { version, records: [...byBase.values()], skipped, firstProblem };
}
