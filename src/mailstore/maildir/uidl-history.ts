import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { asError, isErrno } from '../../errors.js';
import type { Logger } from '../../log.js';
import { hasControlCharacter } from '../../text.js';
import { replaceFile, type MaildirFs } from './fs.js';
import { warnOnce } from './uidl-map.js';

/**
 * The history of a maildrop's UIDL list (docs/migration.md): `<root>/<user>/.poplar-uidl-history`,
 * one entry each time the list a client sees changed, so that a client downloading mail again can be
 * explained. Written at logout (when the list at logout differs from the last entry), at an import
 * and at a migration from another server's list. Lines after the header `poplar-uidl-history 1`:
 * `<ms since 1970> <event> <messages> <fingerprint> <note>`.
 */
export const UIDL_HISTORY_FILE = '.poplar-uidl-history';
const HEADER = 'poplar-uidl-history 1';
/** The entries kept: older ones are dropped. */
export const MAX_UIDL_HISTORY_ENTRIES = 50;
/** A bigger file is damaged (50 lines of at most a few hundred bytes). */
const MAX_UIDL_HISTORY_BYTES = 64 * 1024;
const MAX_NOTE_CHARS = 200;

export type UidlHistoryEvent = 'logout' | 'import' | 'migration';
const EVENTS: ReadonlySet<string> = new Set<UidlHistoryEvent>(['logout', 'import', 'migration']);

export interface UidlHistoryEntry {
  /** Milliseconds since 1970. */
  readonly at: number;
  readonly event: UidlHistoryEvent;
  /** Messages in the list the fingerprint is of. */
  readonly messages: number;
  /** {@link uidlFingerprint} of the list, or `-` (a migration: no list yet). */
  readonly fingerprint: string;
  /** What happened, in words. */
  readonly note: string;
}

/** The UIDLs a client is shown, in order, as 16 hex digits (the first 64 bits of their SHA-256). */
export function uidlFingerprint(uidls: readonly string[]): string {
  const hash = createHash('sha256');
  for (const uidl of uidls) hash.update(uidl).update('\n');
  return hash.digest('hex').slice(0, 16);
}

const FINGERPRINT = /^(?:[0-9a-f]{16}|-)$/;

/** Parses the file; undefined when it is damaged (it is then started again). */
export function parseUidlHistory(text: string): UidlHistoryEntry[] | undefined {
  const lines = text.split('\n');
  if (lines[0] !== HEADER || lines.at(-1) !== '') return undefined;
  const entries: UidlHistoryEntry[] = [];
  for (const line of lines.slice(1, -1)) {
    const [at, event, messages, fingerprint] = line.split(' ', 4);
    const note = line.split(' ').slice(4).join(' ');
    if (at === undefined || event === undefined || messages === undefined || fingerprint === undefined) {
      return undefined;
    }
    const atMs = Number(at);
    const count = Number(messages);
    if (!/^\d{1,15}$/.test(at) || !/^\d{1,9}$/.test(messages) || !EVENTS.has(event)) return undefined;
    if (!FINGERPRINT.test(fingerprint) || hasControlCharacter(note) || note.length > MAX_NOTE_CHARS) {
      return undefined;
    }
    entries.push({ at: atMs, event: event as UidlHistoryEvent, messages: count, fingerprint, note });
  }
  return entries;
}

function formatUidlHistory(entries: readonly UidlHistoryEntry[]): string {
  const lines = entries.map((e) => `${e.at} ${e.event} ${e.messages} ${e.fingerprint} ${e.note}`);
  return `${[HEADER, ...lines].join('\n')}\n`;
}

/** The entries, oldest first; none when there is no file, or a damaged one (logged once). */
export async function readUidlHistory(dir: string, fs: MaildirFs, log: Logger): Promise<UidlHistoryEntry[]> {
  const path = join(dir, UIDL_HISTORY_FILE);
  let text: string;
  try {
    text = await fs.readText(path, MAX_UIDL_HISTORY_BYTES);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    warnOnce(log, path, { err: asError(error) }, 'UIDL history unreadable: started again');
    return [];
  }
  const entries = parseUidlHistory(text);
  if (entries === undefined) warnOnce(log, path, {}, 'UIDL history damaged: started again');
  return entries ?? [];
}

/**
 * Appends an entry (the oldest dropped past {@link MAX_UIDL_HISTORY_ENTRIES}), written atomically.
 * A failure is only logged: the history explains, it never stops a session.
 */
export async function appendUidlHistory(
  dir: string,
  fs: MaildirFs,
  log: Logger,
  entry: UidlHistoryEntry,
): Promise<void> {
  const path = join(dir, UIDL_HISTORY_FILE);
  try {
    const entries = await readUidlHistory(dir, fs, log);
    entries.push({ ...entry, note: entry.note.replace(/\s+/g, ' ').slice(0, MAX_NOTE_CHARS) });
    await replaceFile(fs, path, formatUidlHistory(entries.slice(-MAX_UIDL_HISTORY_ENTRIES)));
  } catch (error) {
    log.warn({ file: path, err: asError(error) }, 'UIDL history not written');
  }
}

/**
 * At logout: the list the session started with and the one it leaves. An entry is appended when the
 * list left differs from the last entry's, saying what changed since it: mail that came or went
 * between sessions, the session's deletions, or UIDLs that changed with the messages left alone.
 */
export async function noteLogout(
  dir: string,
  fs: MaildirFs,
  log: Logger,
  lists: { readonly atLogin: readonly string[]; readonly left: readonly string[]; readonly now: number },
): Promise<void> {
  const entries = await readUidlHistory(dir, fs, log);
  const last = entries.findLast((e) => e.fingerprint !== '-');
  const after = uidlFingerprint(lists.left);
  if (last?.fingerprint === after) return;
  const atLogin = uidlFingerprint(lists.atLogin);
  const notes: string[] = [];
  if (last === undefined) notes.push('first list recorded');
  else if (last.fingerprint !== atLogin) {
    const then = lists.atLogin.length - last.messages;
    notes.push(
      then === 0
        ? `UIDLs changed since the last entry with no change in count (${last.messages} messages): clients may download again`
        : `${Math.abs(then)} messages ${then > 0 ? 'more' : 'fewer'} at login than at the last entry`,
    );
  }
  const deleted = lists.atLogin.length - lists.left.length;
  if (deleted > 0) notes.push(`${deleted} deleted in the session`);
  const entry = { at: lists.now, event: 'logout' as const, messages: lists.left.length, fingerprint: after };
  await appendUidlHistory(dir, fs, log, { ...entry, note: notes.join('; ') });
}
