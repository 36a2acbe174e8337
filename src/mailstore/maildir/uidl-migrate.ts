import { appendUidlHistory } from './uidl-history.js';
import { join } from 'node:path';
import { asError, isErrno } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { MaildirFs } from './fs.js';
import { COURIER_SIZELIST, DamagedSizelistError, parseCourierSizelist } from './uidl-courier.js';
import { DamagedUidlistError, DOVECOT_UIDLIST, parseDovecotUidlist } from './uidl-dovecot.js';
import {
  isBaseName,
  MAX_UIDL_MAP_BYTES,
  parseUidlMap,
  saveUidlMap,
  UIDL_MAP_FILE,
  warnOnce,
  type KeptUidl,
  type UidlMap,
  type UidlSource,
} from './uidl-map.js';

const REDOWNLOAD =
  'its messages are served with Poplar own UIDLs, which clients that knew the old ones download again';

/** Another server's list, and how to read it. */
interface Source {
  readonly file: string;
  readonly source: UidlSource;
  /** Throws an error of `damaged` for a list its server would ignore. */
  parse(text: string): {
    readonly records: readonly { readonly base: string; readonly uidl: string }[];
    readonly skipped: number;
    readonly firstProblem: string | undefined;
  };
  readonly damaged: new (...args: never[]) => Error;
}

/** In this order: a Courier maildrop that Dovecot served since has both, and Dovecot's is the later. */
const SOURCES: readonly Source[] = [
  { file: DOVECOT_UIDLIST, source: 'dovecot', parse: parseDovecotUidlist, damaged: DamagedUidlistError },
  { file: COURIER_SIZELIST, source: 'courier', parse: parseCourierSizelist, damaged: DamagedSizelistError },
];

/**
 * The maildrop's kept UIDLs. Reads `.poplar-uidl` (a maildrop without one costs one failed open).
 * When there is none and `mayMigrate` (the maildrop was never opened by Poplar: it has no size
 * index yet), converts `dovecot-uidlist`, or else `courierpop3dsizelist`, once into a new
 * `.poplar-uidl`. A damaged file is logged once and ignored.
 */
export async function loadUidlMap(
  dir: string,
  options: { readonly fs: MaildirFs; readonly log: Logger; readonly mayMigrate: boolean },
): Promise<UidlMap> {
  const { fs, log } = options;
  const path = join(dir, UIDL_MAP_FILE);
  let text: string;
  try {
    text = await fs.readText(path, MAX_UIDL_MAP_BYTES);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) {
      warnOnce(log, path, { err: asError(error) }, `UIDL map unreadable: ${REDOWNLOAD}`);
      return new Map();
    }
    if (!options.mayMigrate) return new Map();
    for (const source of SOURCES) {
      const map = await migrate(dir, source, fs, log);
      if (map !== undefined) return map;
    }
    return new Map();
  }
  try {
    return parseUidlMap(text);
  } catch (error) {
    warnOnce(log, path, { err: asError(error) }, `UIDL map damaged, ignored: ${REDOWNLOAD}`);
    return new Map();
  }
}

/** Converts one server's list into `.poplar-uidl`; undefined when the maildrop has none. */
async function migrate(dir: string, from: Source, fs: MaildirFs, log: Logger): Promise<UidlMap | undefined> {
  const path = join(dir, from.file);
  let text: string;
  try {
    text = await fs.readText(path, MAX_UIDL_MAP_BYTES);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    warnOnce(log, path, { err: asError(error) }, `${from.file} unreadable: ${REDOWNLOAD}`);
    return new Map();
  }
  const map = new Map<string, KeptUidl>();
  try {
    const list = from.parse(text);
    if (list.skipped > 0) {
      log.warn(
        { file: path, lines: list.skipped, first: list.firstProblem },
        `${from.file} lines left out: those messages get Poplar UIDLs (clients download them again)`,
      );
    }
    const seen = new Set<string>();
    for (const record of list.records) {
      if (!isBaseName(record.base)) continue;
      if (seen.has(record.uidl)) {
        log.warn(
          { file: path, uidl: record.uidl, message: record.base },
          `UIDL clash in ${from.file}: the later message gets a Poplar UIDL`,
        );
        continue;
      }
      seen.add(record.uidl);
      map.set(record.base, { uidl: record.uidl, source: from.source });
    }
  } catch (error) {
    if (!(error instanceof from.damaged)) throw error;
    warnOnce(log, path, { err: error }, `${from.file} damaged, ignored: ${REDOWNLOAD}`);
    return new Map();
  }
  // Not saved, the login fails (try again later): served once with these UIDLs and then forgotten,
  // they would be Poplar's own from the next login on.
  await saveUidlMap(dir, map, fs);
  log.info({ file: path, messages: map.size }, `UIDLs kept from ${from.file}`);
  const note = `${map.size} UIDLs kept from ${from.file}`;
  await appendUidlHistory(dir, fs, log, {
    at: Date.now(),
    event: 'migration',
    messages: map.size,
    fingerprint: '-',
    note,
  });
  return map;
}
