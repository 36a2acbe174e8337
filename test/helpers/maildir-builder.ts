import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FixtureMessage {
  /** File name; a Maildir-like name is made up when left out. */
  readonly name?: string;
  /** `new` (not yet seen by any reader) or `cur`; default `new`. */
  readonly folder?: 'new' | 'cur';
  readonly content: string | Uint8Array;
}

let counter = 0;

/** Creates `<root>/<user>/{cur,new,tmp}` with the given messages; returns the maildir path and the file names. */
export async function buildMaildir(
  root: string,
  user: string,
  messages: readonly FixtureMessage[] = [],
): Promise<{ dir: string; names: string[] }> {
  const dir = join(root, user);
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
  const names: string[] = [];
  for (const m of messages) {
    counter += 1;
    const folder = m.folder ?? 'new';
    const name =
      m.name ?? `${1_700_000_000 + counter}.M${counter}P${process.pid}.test${folder === 'cur' ? ':2,' : ''}`;
    await writeFile(join(dir, folder, name), m.content);
    names.push(name);
  }
  return { dir, names };
}
