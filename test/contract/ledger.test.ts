import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { EMPTY_LEDGER, MemoryUserLedger, withSessionStart } from '../../src/mailstore/ledger.js';
import { FileUserLedger, LEDGER_FILE, LEDGER_MAX_BYTES } from '../../src/mailstore/maildir/ledger-file.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';
import { describeUserLedger } from './ledger.contract.js';

describeUserLedger('MemoryUserLedger', () => Promise.resolve(new MemoryUserLedger()));

describeUserLedger('FileUserLedger (.poplar-ledger in the maildir)', async (t) => {
  const root = await tempDir(t);
  for (const user of ['alice', 'bob']) await mkdir(join(root, user));
  return new FileUserLedger(root);
});

const start = {
  start: 1_765_000_000_000,
  address: '198.51.100.4',
  method: 'SASL PLAIN',
  tls: true,
  bytesSent: 0,
  downloaded: 0,
  retrieved: 0,
  deleted: 0,
};

test('FileUserLedger: what it writes is JSON in the maildir that another instance (another node) reads', async (t) => {
  const root = await tempDir(t);
  await mkdir(join(root, 'alice'));
  await new FileUserLedger(root).update('alice', (s) => withSessionStart(s, start));
  const text = await readFile(join(root, 'alice', LEDGER_FILE), 'utf8');
  assert.equal((JSON.parse(text) as { v: number }).v, 1);
  assert.equal((await new FileUserLedger(root).read('alice')).lastStart, start.start);
});

test('FileUserLedger: a damaged, oversized, linked or unreadable file reads as empty, logged once per user', async (t) => {
  const root = await tempDir(t);
  const logger = recordingLogger();
  const ledger = new FileUserLedger(root, { logger });
  const cases: [string, (path: string) => Promise<void>][] = [
    ['garbage', (p) => writeFile(p, '{"v":1,"lastStart":"soon"')],
    ['wrong types', (p) => writeFile(p, JSON.stringify({ v: 1, dayBytes: -1, sessions: [] }))],
    [
      'too many sessions',
      (p) => writeFile(p, JSON.stringify({ v: 1, dayBytes: 0, sessions: Array(21).fill(start) })),
    ],
    [
      'oversized',
      (p) => writeFile(p, `{"v":1,"dayBytes":0,"sessions":[],"x":"${'a'.repeat(LEDGER_MAX_BYTES)}"}`),
    ],
    [
      'a link',
      async (p) => {
        await writeFile(join(root, 'target'), JSON.stringify({ v: 1, dayBytes: 5, sessions: [] }));
        await symlink(join(root, 'target'), p);
      },
    ],
    ['a folder', (p) => mkdir(p)],
    [
      'unreadable',
      async (p) => {
        await writeFile(p, JSON.stringify({ v: 1, dayBytes: 5, sessions: [] }));
        await chmod(p, 0);
      },
    ],
  ];
  for (const [index, [what, plant]] of cases.entries()) {
    const user = `user${index}`;
    await mkdir(join(root, user));
    await plant(join(root, user, LEDGER_FILE));
    if (what === 'unreadable' && process.getuid?.() === 0) continue; // root reads anything
    assert.deepEqual(await ledger.read(user), EMPTY_LEDGER, what);
    assert.deepEqual(await ledger.read(user), EMPTY_LEDGER, what);
    assert.equal(
      logger.lines.filter((l) => l.includes(`"user":"${user}"`)).length,
      1,
      `${what}: logged once`,
    );
  }
  // A name that is not valid never becomes a path.
  assert.deepEqual(await ledger.read('../alice'), EMPTY_LEDGER);
  await assert.rejects(ledger.update('../alice', (s) => s));
});
