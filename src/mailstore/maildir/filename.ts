import { createHash } from 'node:crypto';

/**
 * Maildir file names: `base[:2,FLAGS]`. The base is unique in the maildir and never changes;
 * the info part after `:2,` holds the flags (letters, sorted) and changes when flags do.
 * Delivery agents may put `,S=<bytes on disk>` and `,W=<bytes with CRLF line ends>` in the base.
 */
export interface MaildirName {
  readonly name: string;
  readonly base: string;
  readonly flags: string;
  /** Seconds since 1970 from the leading number of the base (the delivery time), if any. */
  readonly deliveredAt: number | undefined;
  /** `,W=`: the size with CRLF line ends, the size POP3 reports. */
  readonly virtualSize: number | undefined;
}

const INFO_SEPARATOR = ':2,';
const UIDL_SAFE = /^[\x21-\x7e]{1,70}$/;

export function parseMaildirName(name: string): MaildirName {
  const colon = name.indexOf(':');
  const base = colon === -1 ? name : name.slice(0, colon);
  const flags = colon !== -1 && name.startsWith(INFO_SEPARATOR, colon) ? name.slice(colon + 3) : '';
  // Without regular expressions where they are not needed: a big maildrop parses every name.
  const w = base.includes(',W=') ? /,W=([0-9]{1,15})(?:,|$)/.exec(base) : null;
  return {
    name,
    base,
    flags,
    deliveredAt: leadingSeconds(base),
    virtualSize: w === null ? undefined : Number(w[1]),
  };
}

/** The number of 1 to 12 digits that starts `base`, if a `.` or the end follows them. */
function leadingSeconds(base: string): number | undefined {
  let seconds = 0;
  let i = 0;
  for (; i < base.length && i <= 12; i++) {
    const digit = base.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) break;
    seconds = seconds * 10 + digit;
  }
  if (i === 0 || i > 12 || (i < base.length && base.charCodeAt(i) !== 0x2e)) return undefined;
  return seconds;
}

/** The name a file from `new/` takes in `cur/` (an empty info part, no flags yet). */
export function curNameFor(newName: string): string {
  return newName.includes(':') ? newName : `${newName}${INFO_SEPARATOR}`;
}

/** The file name with one more flag, flags kept sorted as the Maildir convention asks. */
export function withFlag(parsed: MaildirName, flag: string): string {
  if (parsed.flags.includes(flag)) return parsed.name;
  const flags = (parsed.flags + flag).split('').sort().join(''); // flags are ASCII letters
  return `${parsed.base}${INFO_SEPARATOR}${flags}`;
}

/**
 * The UIDL of a message: its base name when that is a valid unique-id (1-70 characters in
 * 0x21-0x7E, RFC 1939 section 7), else `~` and a digest of the base. Both depend only on the
 * base, so the id survives flag changes, restarts and the loss of any index file.
 */
export function uidFor(base: string): string {
  if (UIDL_SAFE.test(base) && !base.startsWith('~')) return base;
  return `~${createHash('sha256').update(base).digest('base64url').slice(0, 40)}`;
}
