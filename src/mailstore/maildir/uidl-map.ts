import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { hasControlCharacter } from '../../text.js';
import { replaceFile, type MaildirFs } from './fs.js';
import { isFirstReport } from './log-once.js';
import { isValidUidl } from './uidl-dovecot.js';

/**
 * A maildrop's own UIDLs kept from another server (docs/migration.md): `<root>/<user>/.poplar-uidl`
 * maps a message's base name to the UIDL it is served with, and says where that came from. A
 * message it does not name is served with Poplar's own UIDL (`uidFor`). Lines after the header
 * `poplar-uidl 1`: `<source> <uidl> <base name>`.
 */
export const UIDL_MAP_FILE = '.poplar-uidl';
const HEADER = 'poplar-uidl 1';

/** Where a kept UIDL came from; `poplar` is a message the file does not name. */
export type UidlSource = 'dovecot' | 'courier' | 'imported';
const SOURCES: ReadonlySet<string> = new Set<UidlSource>(['dovecot', 'courier', 'imported']);

/** One kept UIDL. */
export interface KeptUidl {
  readonly uidl: string;
  readonly source: UidlSource;
}

/** Base name -> kept UIDL, in the file's order. */
export type UidlMap = ReadonlyMap<string, KeptUidl>;

/**
 * The largest `.poplar-uidl` read (about 100 bytes a line: some 160,000 messages), and the largest
 * `dovecot-uidlist` or Courier list converted. A bigger one is logged and ignored.
 */
export const MAX_UIDL_MAP_BYTES = 16 * 1024 * 1024;

/** A `.poplar-uidl` that is not one: the maildrop is served with Poplar's own UIDLs. */
class DamagedMapError extends Error {
  override name = 'DamagedMapError';
}

/** Parses a `.poplar-uidl`; throws on a damaged file (a bad header or line: the whole file is distrusted). */
export function parseUidlMap(text: string): Map<string, KeptUidl> {
  const lines = text.split('\n');
  if (lines[0] !== HEADER || lines.at(-1) !== '') throw new DamagedMapError('no header, or cut short');
  const map = new Map<string, KeptUidl>();
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i] as string;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    const source = line.slice(0, a);
    const uidl = line.slice(a + 1, b);
    const base = line.slice(b + 1);
    if (a <= 0 || b <= a || !SOURCES.has(source) || !isValidUidl(uidl) || !isBaseName(base)) {
      throw new DamagedMapError(`line ${i + 1} is damaged`);
    }
    map.set(base, { uidl, source: source as UidlSource });
  }
  return map;
}

/** A name the scan could list, without its flags: no dotfile, no path, no control character, no colon. */
export function isBaseName(base: string): boolean {
  return (
    base.length > 0 &&
    base.length <= 4096 &&
    !base.startsWith('.') &&
    !base.includes('/') &&
    !base.includes(':') &&
    !hasControlCharacter(base)
  );
}

/** The text of a `.poplar-uidl`. */
export function formatUidlMap(map: UidlMap): string {
  const parts = [HEADER];
  for (const [base, kept] of map) parts.push(`${kept.source} ${kept.uidl} ${base}`);
  return `${parts.join('\n')}\n`;
}

/** Writes the map atomically: a temporary file in the maildir, renamed over the old one. */
export async function saveUidlMap(dir: string, map: UidlMap, fs: MaildirFs): Promise<void> {
  await replaceFile(fs, join(dir, UIDL_MAP_FILE), formatUidlMap(map));
}

/** Logs a problem with `path` once per process (until the set is full and starts again). */
export function warnOnce(log: Logger, path: string, fields: Record<string, unknown>, message: string): void {
  if (isFirstReport(`${path}\n${message}`)) log.warn({ file: path, ...fields }, message);
}

/** A message as the scan lists it, for {@link assignUidls}. */
interface Listed {
  readonly file: { readonly base: string };
  uid: string;
}

/**
 * Gives each message its UIDL, unique in the maildrop (RFC 1939): a kept UIDL first (in delivery
 * order), then Poplar's own for the rest (the `uid` the message comes with, `ownUid(base)`), with
 * a suffix where it is taken. A kept UIDL taken already (two files with one base, or a hand-edited
 * map) is reported, and the message keeps its own.
 */
export function assignUidls<M extends Listed>(
  messages: M[],
  kept: UidlMap,
  ownUid: (base: string) => string,
  report: (message: M, uidl: string) => void,
): M[] {
  const taken = new Set<string>();
  let rest = messages;
  if (kept.size > 0) {
    rest = [];
    for (const m of messages) {
      const k = kept.get(m.file.base);
      if (k !== undefined && !taken.has(k.uidl)) {
        m.uid = k.uidl;
        taken.add(k.uidl);
      } else {
        if (k !== undefined) report(m, k.uidl);
        rest.push(m);
      }
    }
  }
  for (const m of rest) {
    let uid = m.uid;
    for (let n = 2; taken.has(uid); n++) uid = ownUid(`${m.file.base}~${n}`);
    m.uid = uid;
    taken.add(uid);
  }
  return messages;
}
