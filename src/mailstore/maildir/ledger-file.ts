import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isErrno } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { isValidUserName } from '../../user.js';
import { EMPTY_LEDGER, formatLedger, parseLedger, type LedgerState, type UserLedger } from '../ledger.js';

/** The ledger's file in the user's maildir folder. */
export const LEDGER_FILE = '.poplar-ledger';
/** Largest ledger file read (20 sessions take about 5 KiB): a larger one is damaged. */
export const LEDGER_MAX_BYTES = 64 * 1024;

/**
 * Each user's ledger in `<root>/<user>/.poplar-ledger`, so that every worker and every node that
 * shares the mail root sees the same one, with no IPC and no Redis. The file is hostile input: read
 * without following a link, at most {@link LEDGER_MAX_BYTES}, checked field by field; a damaged one
 * is logged once and read as empty (the user's next session writes a sound one). Written to a
 * temporary file in the same folder, then renamed over it (not flushed: losing it loses no mail and
 * no secret, only a login delay and a day's download count).
 */
export class FileUserLedger implements UserLedger {
  readonly #root: () => string;
  readonly #logger: Logger;
  /** Users whose damaged ledger was logged already. */
  readonly #reported = new Set<string>();

  /** `root`: the mail root, or a function that gives it now (it can change at run time). */
  constructor(root: string | (() => string), options: { readonly logger?: Logger } = {}) {
    this.#root = typeof root === 'string' ? () => root : root;
    this.#logger = options.logger ?? silentLogger;
  }

  async read(user: string): Promise<LedgerState> {
    if (!isValidUserName(user)) return EMPTY_LEDGER;
    const path = this.#path(user);
    let text: string;
    try {
      text = await readBounded(path);
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return EMPTY_LEDGER;
      // A link (ELOOP), a folder (EISDIR), a FIFO (EAGAIN), too large, unreadable: never trusted.
      return this.#damaged(user, path, error);
    }
    let state: LedgerState | undefined;
    try {
      state = parseLedger(JSON.parse(text));
    } catch {
      state = undefined;
    }
    if (state === undefined) return this.#damaged(user, path, 'not a ledger');
    this.#reported.delete(user);
    return state;
  }

  async update(user: string, change: (state: LedgerState) => LedgerState): Promise<void> {
    if (!isValidUserName(user)) throw new Error('not a valid user name');
    const next = change(await this.read(user));
    const path = this.#path(user);
    await removeInterruptedWrites(dirname(path));
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, formatLedger(next), { mode: 0o600, flag: 'wx' });
      await rename(tmp, path);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
  }

  #path(user: string): string {
    return join(this.#root(), user, LEDGER_FILE);
  }

  #damaged(user: string, path: string, why: unknown): LedgerState {
    if (!this.#reported.has(user)) {
      this.#reported.add(user);
      const problem = why instanceof Error ? why.message : String(why);
      this.#logger.warn({ user, file: path, problem }, 'user ledger damaged: read as empty');
    }
    return EMPTY_LEDGER;
  }
}

/**
 * Deletes `.poplar-ledger.<random>.tmp` files: writes cut short by a crash. Only a session holding
 * the maildrop's lock writes the ledger, so none is under way.
 */
async function removeInterruptedWrites(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(`${LEDGER_FILE}.`) && name.endsWith('.tmp'))
      await unlink(join(dir, name)).catch(() => undefined);
  }
}

class TooLargeError extends Error {
  constructor() {
    super(`larger than ${LEDGER_MAX_BYTES} bytes`);
  }
}

/** The file's text, not through a link, refusing one over {@link LEDGER_MAX_BYTES}. */
async function readBounded(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buffer = Buffer.alloc(LEDGER_MAX_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > LEDGER_MAX_BYTES) throw new TooLargeError();
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}
