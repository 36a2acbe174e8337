import { readFile } from 'node:fs/promises';
import type { Action, Outcome, Send } from './poplarctl-actions.js';
import { UsageError } from './poplarctl-actions.js';

/**
 * `poplarctl uidl USER` and `poplarctl uidl import USER FILE` (docs/migration.md), over the
 * monitor's GET 0x24 `uidl` and CONFIG 0x08 `importUidl` (docs/monitor-protocol.md).
 */

/**
 * The most bytes of FILE sent in one request: the monitor reads at most 8192 bytes of DATA by
 * default (`maxDataBytes`), the user name's line included. FILE goes in pieces cut at line ends.
 */
export const IMPORT_PIECE_BYTES = 8000;

const REFUSED =
  'the server refused: the user has a POP3 session open (try again once it ends), or the user name is invalid';

const fail = (status: string, what: string): Outcome => ({
  ok: false,
  error: status === 'badData' ? REFUSED : `${what}: the server answered ${status}`,
  exitCode: 1,
});

interface HistoryEntry {
  at: number;
  event: string;
  messages: number;
  fingerprint: string;
  note: string;
}

interface Entry {
  uidl: string;
  file: string;
  source: string;
}

const show = (user: string): Action => ({
  async run(send: Send) {
    const all: Entry[] = [];
    let history: HistoryEntry[] | undefined;
    for (;;) {
      const data = Buffer.from(all.length === 0 ? user : `${user}\n${all.length}`);
      const response = await send({ type: 'get', target: 'uidl', data });
      if (response.status !== 'ok') return fail(response.status, 'uidl');
      const page = JSON.parse(response.data.toString('utf8')) as {
        messages: Entry[];
        isTruncated: boolean;
        history?: HistoryEntry[];
      };
      history ??= page.history;
      all.push(...page.messages);
      if (!page.isTruncated || page.messages.length === 0) break;
    }
    const list = all.map((m, i) => `${i + 1} ${m.uidl} ${m.source} ${m.file}`).join('\n');
    const lines = (history ?? []).map(
      (h) => `${new Date(h.at).toISOString()} ${h.event} ${h.messages} ${h.fingerprint} ${h.note}`,
    );
    const past =
      lines.length === 0 ? 'no UIDL history yet' : `UIDL history (oldest first):\n${lines.join('\n')}`;
    const text = `${list === '' ? `${user} has no messages` : list}\n${past}`;
    return { ok: true, text, json: { user, messages: all, history: history ?? [] } };
  },
});

/** FILE's lines in pieces of at most {@link IMPORT_PIECE_BYTES}; a longer line alone is left out (invalid). */
export function importPieces(text: string, user: string): { pieces: string[]; tooLong: number } {
  const room = IMPORT_PIECE_BYTES - Buffer.byteLength(user) - 1;
  const pieces: string[] = [];
  let piece = '';
  let tooLong = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const bytes = Buffer.byteLength(line) + 1;
    if (bytes > room) {
      tooLong++;
      continue;
    }
    if (Buffer.byteLength(piece) + bytes > room) {
      pieces.push(piece);
      piece = '';
    }
    piece += `${line}\n`;
  }
  if (piece !== '') pieces.push(piece);
  return { pieces, tooLong };
}

const importFile = (user: string, file: string): Action => ({
  async run(send: Send) {
    const text = await readFile(file, 'utf8');
    const { pieces, tooLong } = importPieces(text, user);
    const total = { imported: 0, unknown: 0, invalid: tooLong, clashes: 0 };
    for (const piece of pieces) {
      const data = Buffer.from(`${user}\n${piece}`);
      const response = await send({ type: 'config', target: 'importUidl', data });
      if (response.status !== 'ok') return fail(response.status, 'uidl import');
      const counts = JSON.parse(response.data.toString('utf8')) as typeof total;
      for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += counts[key];
    }
    return {
      ok: true,
      text:
        `${user}: ${total.imported} imported, ${total.unknown} unknown file names, ` +
        `${total.invalid} invalid lines, ${total.clashes} clashes`,
      json: { user, ...total },
    };
  },
});

/** `uidl USER` or `uidl import USER FILE`. */
export function uidlAction(words: readonly string[]): Action {
  const [first, second, third] = words;
  if (first === 'import') {
    if (second === undefined || third === undefined || words.length > 3)
      throw new UsageError('uidl import: expected USER FILE');
    return importFile(second, third);
  }
  if (first === undefined || first === '' || words.length > 1) throw new UsageError('uidl: expected USER');
  return show(first);
}
