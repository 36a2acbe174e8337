import { isValidUidl } from './uidl-dovecot.js';
import { isBaseName, type KeptUidl, type UidlMap } from './uidl-map.js';

/**
 * `poplarctl uidl import USER FILE` (docs/migration.md): lines `UIDL file-name` for a user's
 * messages, from any other server. The file name may carry flags (`:2,S`): it is matched by its
 * base name. Applied to the maildrop as a login found it, with its lock held.
 */

/** What an import did. */
export interface ImportCounts {
  /** Lines whose UIDL the message now has. */
  imported: number;
  /** Lines naming no message of the maildrop (deleted since, or another user's). */
  unknown: number;
  /** Lines that are not `UIDL file-name`, or whose UIDL is not 1-70 characters in 0x21-0x7E. */
  invalid: number;
  /** Lines whose UIDL another message already has (or an earlier line gave): refused, never served twice. */
  clashes: number;
}

/** The largest import text taken in one request: a monitor request's DATA is smaller still. */
export const MAX_IMPORT_BYTES = 65_535;

/**
 * Applies `text`'s lines to `kept` (the maildrop's `.poplar-uidl`), given the maildrop's messages
 * with the UIDLs they are served with now. Resolves to the new map and the counts.
 */
export function applyImport(
  text: string,
  messages: readonly { readonly base: string; readonly uid: string }[],
  kept: UidlMap,
): { map: Map<string, KeptUidl>; counts: ImportCounts } {
  const counts: ImportCounts = { imported: 0, unknown: 0, invalid: 0, clashes: 0 };
  const uidOf = new Map(messages.map((m) => [m.base, m.uid]));
  const holder = new Map(messages.map((m) => [m.uid, m.base]));
  const map = new Map(kept);
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    const space = line.indexOf(' ');
    const uidl = line.slice(0, space);
    const name = line.slice(space + 1);
    const colon = name.indexOf(':');
    const base = colon === -1 ? name : name.slice(0, colon);
    if (space <= 0 || !isValidUidl(uidl) || !isBaseName(base)) {
      counts.invalid++;
      continue;
    }
    const current = uidOf.get(base);
    if (current === undefined) {
      counts.unknown++;
      continue;
    }
    const other = holder.get(uidl);
    if (other !== undefined && other !== base) {
      counts.clashes++;
      continue;
    }
    holder.delete(current);
    holder.set(uidl, base);
    uidOf.set(base, uidl);
    map.set(base, { uidl, source: 'imported' });
    counts.imported++;
  }
  return { map, counts };
}
