import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { threadPoolFs, type MaildirFs } from './fs.js';

export const INDEX_FILE = '.poplar-sizes';
const HEADER = 'poplar-sizes 1';

export interface IndexEntry {
  /** Octets as POP3 sends them (CRLF line ends), before byte-stuffing. */
  readonly size: number;
  /** The file is already exactly what RETR sends: CRLF line ends, a final CRLF, no line starting with `.`. */
  readonly isVerbatim: boolean;
}

/**
 * A maildrop's cache of message sizes, keyed by base name (Maildir files never change content, only
 * their flags, which are not part of the base). One line per message: `size verbatim base`. It is a
 * cache: a missing, old or damaged file only costs reading the messages again.
 */
export class SizeIndex {
  readonly #path: string;
  readonly #entries = new Map<string, IndexEntry>();
  readonly #fs: MaildirFs;
  #isDirty = false;

  private constructor(dir: string, fs: MaildirFs) {
    this.#path = join(dir, INDEX_FILE);
    this.#fs = fs;
  }

  /** Reads the index of the maildrop in `dir`. */
  static async load(dir: string, fs: MaildirFs = threadPoolFs): Promise<SizeIndex> {
    const index = new SizeIndex(dir, fs);
    let text: string;
    try {
      text = await fs.readText(index.#path);
    } catch {
      return index;
    }
    const lines = text.split('\n');
    if (lines[0] !== HEADER) return index;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const a = line.indexOf(' ');
      const b = line.indexOf(' ', a + 1);
      if (a <= 0 || b <= a) continue;
      const size = Number(line.slice(0, a));
      if (!Number.isSafeInteger(size) || size < 0) continue;
      index.#entries.set(line.slice(b + 1), { size, isVerbatim: line.slice(a + 1, b) === '1' });
    }
    return index;
  }

  get(base: string): IndexEntry | undefined {
    return this.#entries.get(base);
  }

  set(base: string, entry: IndexEntry): void {
    this.#entries.set(base, entry);
    this.#isDirty = true;
  }

  /** Forgets every message not in `present`. */
  retain(present: ReadonlySet<string>): void {
    for (const base of this.#entries.keys()) {
      if (!present.has(base)) {
        this.#entries.delete(base);
        this.#isDirty = true;
      }
    }
  }

  /** Writes the index if it changed: to a temporary file, then renamed over the old one. */
  async save(): Promise<void> {
    if (!this.#isDirty) return;
    const parts = [HEADER];
    for (const [base, e] of this.#entries) parts.push(`${e.size} ${e.isVerbatim ? '1' : '0'} ${base}`);
    const tmp = `${this.#path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await this.#fs.writeText(tmp, `${parts.join('\n')}\n`, false);
      await this.#fs.rename(tmp, this.#path);
      this.#isDirty = false;
    } catch (error) {
      await this.#fs.unlink(tmp).catch(() => undefined);
      throw error;
    }
  }
}

/**
 * Deletes the maildir's `.poplar-sizes.<random>.tmp` files: saves cut short by a crash (or a full
 * disk). Call it with the maildrop's lock held: only a holder writes them.
 */
export async function removeInterruptedSaves(dir: string, fs: MaildirFs): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(`${INDEX_FILE}.`) && name.endsWith('.tmp')) {
      await fs.unlink(join(dir, name)).catch(() => undefined);
    }
  }
}
