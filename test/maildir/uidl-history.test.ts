// The UIDL history file (.poplar-uidl-history): bounded, validated, written whole.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { blockingFs } from '../../src/mailstore/maildir/fs.js';
import {
  appendUidlHistory,
  MAX_UIDL_HISTORY_ENTRIES,
  noteLogout,
  parseUidlHistory,
  readUidlHistory,
  UIDL_HISTORY_FILE,
  uidlFingerprint,
} from '../../src/mailstore/maildir/uidl-history.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

const entry = (at: number) => ({
  at,
  event: 'import' as const,
  messages: 1,
  fingerprint: '-',
  note: `n${at}`,
});

test('the fingerprint depends on every UIDL and their order', () => {
  assert.match(uidlFingerprint(['a', 'b']), /^[0-9a-f]{16}$/);
  assert.notEqual(uidlFingerprint(['a', 'b']), uidlFingerprint(['b', 'a']));
  assert.notEqual(uidlFingerprint(['ab']), uidlFingerprint(['a', 'b']));
  assert.equal(uidlFingerprint(['a', 'b']), uidlFingerprint(['a', 'b']));
});

test('appending keeps the newest entries only, and leaves no temporary file', async (t) => {
  const dir = await tempDir(t);
  const log = recordingLogger();
  for (let i = 1; i <= MAX_UIDL_HISTORY_ENTRIES + 5; i++)
    await appendUidlHistory(dir, blockingFs, log, entry(i));
  const kept = await readUidlHistory(dir, blockingFs, log);
  assert.equal(kept.length, MAX_UIDL_HISTORY_ENTRIES);
  assert.equal(kept[0]?.at, 6);
  assert.equal(kept.at(-1)?.note, `n${MAX_UIDL_HISTORY_ENTRIES + 5}`);
  assert.deepEqual(await readdir(dir), [UIDL_HISTORY_FILE]);
});

test('a damaged file is read as empty, logged once, and started again', async (t) => {
  const dir = await tempDir(t);
  const log = recordingLogger();
  for (const text of [
    'nothing\n',
    'poplar-uidl-history 1\n1 logout 3 zzzz note\n',
    'poplar-uidl-history 1\n1 deleted 3 - note\n',
    'poplar-uidl-history 1\n1 logout 3 - cut short',
  ]) {
    assert.equal(parseUidlHistory(text), undefined, text);
  }
  await writeFile(join(dir, UIDL_HISTORY_FILE), 'poplar-uidl-history 1\n1 logout x - a\n');
  assert.deepEqual(await readUidlHistory(dir, blockingFs, log), []);
  assert.deepEqual(await readUidlHistory(dir, blockingFs, log), []);
  assert.equal(log.lines.filter((l) => l.includes('UIDL history damaged')).length, 1);
  await appendUidlHistory(dir, blockingFs, log, entry(7));
  assert.equal(
    await readFile(join(dir, UIDL_HISTORY_FILE), 'utf8'),
    'poplar-uidl-history 1\n7 import 1 - n7\n',
  );
});

test('a logout adds an entry only when the list it leaves differs from the last one, and says why', async (t) => {
  const dir = await tempDir(t);
  const log = recordingLogger();
  const logout = (atLogin: string[], left: string[], now: number) =>
    noteLogout(dir, blockingFs, log, { atLogin, left, now });
  await logout(['a', 'b'], ['a', 'b'], 1);
  await logout(['a', 'b'], ['a', 'b'], 2);
  await logout(['a', 'b', 'c'], ['c'], 3);
  await logout(['c', 'd'], ['c', 'd'], 4);
  await logout(['c', 'x'], ['c', 'x'], 5);
  const notes = (await readUidlHistory(dir, blockingFs, log)).map((e) => `${e.at} ${e.messages} ${e.note}`);
  assert.deepEqual(notes, [
    '1 2 first list recorded',
    '3 1 1 messages more at login than at the last entry; 2 deleted in the session',
    '4 2 1 messages more at login than at the last entry',
    '5 2 UIDLs changed since the last entry with no change in count (2 messages): clients may download again',
  ]);
});
