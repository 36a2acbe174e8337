import type { Logger } from '../../log.js';
import { threadPoolFs } from './fs.js';
import type { MaildirStore } from './store.js';
import { applyImport, type ImportCounts } from './uidl-import.js';
import { saveUidlMap, type UidlSource } from './uidl-map.js';
import { loadUidlMap } from './uidl-migrate.js';
import {
  appendUidlHistory,
  readUidlHistory,
  uidlFingerprint,
  type UidlHistoryEntry,
} from './uidl-history.js';

/** One message as `poplarctl uidl USER` shows it. */
export interface UidlEntry {
  readonly uidl: string;
  /** The file name in `cur/`. */
  readonly file: string;
  readonly source: UidlSource | 'poplar';
}

/**
 * `poplarctl uidl import`: the lines applied to the user's `.poplar-uidl`, with the maildrop's lock
 * held (refused with `[IN-USE]` while a session has it). The file is written only when a line was
 * imported.
 */
export async function importUidls(
  store: MaildirStore,
  user: string,
  text: string,
  log: Logger,
): Promise<ImportCounts> {
  return store.withMaildrop(user, async (dir, messages) => {
    const kept = await loadUidlMap(dir, { fs: threadPoolFs, log, mayMigrate: false });
    const listed = messages.map((m) => ({ base: m.file.base, uid: m.uid }));
    const { map, counts } = applyImport(text, listed, kept);
    if (counts.imported > 0) {
      await saveUidlMap(dir, map, threadPoolFs);
      const uidls = listed.map((m) => map.get(m.base)?.uidl ?? m.uid);
      await appendUidlHistory(dir, threadPoolFs, log, {
        at: Date.now(),
        event: 'import',
        messages: uidls.length,
        fingerprint: uidlFingerprint(uidls),
        note: `${counts.imported} UIDLs imported (poplarctl uidl import)`,
      });
    }
    log.info({ user, ...counts }, 'UIDLs imported');
    return counts;
  });
}

/** The maildrop's UIDL history, oldest first (read without the lock: it is replaced atomically). */
export async function uidlHistory(
  store: MaildirStore,
  user: string,
  log: Logger,
): Promise<UidlHistoryEntry[]> {
  return readUidlHistory(store.maildirOf(user), threadPoolFs, log);
}

/** `poplarctl uidl USER`: every message with the UIDL it is served with and where that came from. */
export async function describeUidls(store: MaildirStore, user: string, log: Logger): Promise<UidlEntry[]> {
  return store.withMaildrop(user, async (dir, messages) => {
    const kept = await loadUidlMap(dir, { fs: threadPoolFs, log, mayMigrate: false });
    return messages.map((m) => {
      const k = kept.get(m.file.base);
      return { uidl: m.uid, file: m.file.name, source: k?.uidl === m.uid ? k.source : 'poplar' };
    });
  });
}
