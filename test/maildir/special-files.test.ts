// Files in a maildir that are not what a mail store expects: a FIFO or another special file where
// a message (or the size index) should be, and names that are not UTF-8. None may block the process: open(2) of a FIFO waits
// for a writer, and with blocking file calls that would freeze every session of the process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { link, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { safeNameOf } from '../../src/mailstore/maildir/undecodable.js';
import { readContent } from '../helpers/content.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const signal = new AbortController().signal;

/**
 * The scenario runs in a child process with a time limit: if an open blocks on the FIFO (the bug),
 * it is the child that freezes, and it is killed, instead of this test process hanging.
 */
const CHILD = `
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { link, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
const { MaildirStore } = await import(process.env.STORE_URL);
const { root, blockingIo, swap } = JSON.parse(process.env.SCENARIO);
const lines = [];
const log = (fields, message) => lines.push({ ...fields, message });
const logger = { debug: log, info: log, warn: log, error: log, child: () => logger };
const store = new MaildirStore({ root, blockingIo, logger });
const dir = join(root, 'alice');
const signal = new AbortController().signal;
const fifo = (path) => { rmSync(path, { force: true }); execFileSync('mkfifo', [path]); };
const result = {};
if (swap === 'index') fifo(join(dir, '.poplar-sizes'));
const drop = await store.open({ name: 'alice' });
result.uids = drop.messages.map((m) => m.uid);
if (swap === 'message') fifo(join(dir, 'cur', '1700000001.A.host:2,'));
const outcomes = [];
for (const m of drop.messages) {
  try {
    const content = await drop.read(m.uid, { signal });
    const chunks = [];
    for await (const c of Buffer.isBuffer(content) ? [content] : content) chunks.push(c);
    outcomes.push(Buffer.concat(chunks).toString('latin1'));
  } catch (error) {
    outcomes.push(error.name + ': ' + error.message);
  }
}
await drop.close();
result.outcomes = outcomes;
result.warnings = lines.filter((l) => l.message === 'message skipped: not a regular file').length;
process.stdout.write(JSON.stringify(result));
`;

async function scenario(
  t: TestContext,
  swap: 'message' | 'index',
  blockingIo: boolean,
): Promise<{ uids: string[]; outcomes: string[]; warnings: number }> {
  const root = await tempDir(t);
  await buildMaildir(root, 'alice', [
    { name: '1700000001.A.host', content: 'first\n' },
    { name: '1700000002.B.host', content: 'second\n' },
  ]);
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: {
      ...process.env,
      STORE_URL: new URL('../../src/mailstore/maildir/store.js', import.meta.url).href,
      SCENARIO: JSON.stringify({ root, blockingIo, swap }),
    },
    timeout: 15_000,
    killSignal: 'SIGKILL',
  });
  return JSON.parse(stdout) as { uids: string[]; outcomes: string[]; warnings: number };
}

describe('a FIFO in place of a file never blocks', () => {
  for (const blockingIo of [true, false]) {
    const how = blockingIo ? 'blocking calls' : 'the thread pool';
    test(`a message swapped for a FIFO after login is refused as gone, logged, the others served (${how})`, async (t) => {
      const result = await scenario(t, 'message', blockingIo);
      assert.deepEqual(result.uids, ['1700000001.A.host', '1700000002.B.host']);
      assert.deepEqual(result.outcomes, ['MessageGoneError: message is no longer available', 'second\n']);
      assert.equal(result.warnings, 1);
    });

    test(`a FIFO in place of the size index is ignored and every message is served (${how})`, async (t) => {
      const result = await scenario(t, 'index', blockingIo);
      assert.deepEqual(result.outcomes, ['first\n', 'second\n']);
    });
  }

  test('a FIFO among the messages is skipped at login and logged once, not at every login', async (t) => {
    const root = await tempDir(t);
    const { dir } = await buildMaildir(root, 'alice', [{ name: '1700000001.A.host', content: 'a\n' }]);
    await run('mkfifo', [join(dir, 'cur', '1700000002.fifo:2,')]);
    await run('mkfifo', [join(dir, 'new', '1700000003.fifo')]);
    const logger = recordingLogger();
    const store = new MaildirStore({ root, logger });
    for (let i = 0; i < 3; i++) {
      const drop = await store.open({ name: 'alice' });
      assert.deepEqual(
        drop.messages.map((m) => m.uid),
        ['1700000001.A.host'],
      );
      await drop.close();
    }
    const warned = logger.lines
      .map((l) => JSON.parse(l) as { message?: string; file?: string })
      .filter((l) => l.message === 'message skipped: not a regular file')
      .map((l) => l.file)
      .sort();
    assert.deepEqual(warned, [join(dir, 'cur', '1700000002.fifo:2,'), join(dir, 'new', '1700000003.fifo')]);
  });
});

describe('file names that are not UTF-8', () => {
  /** `<dir>/<folder>/` followed by raw name bytes: a path that no JavaScript string can name. */
  const rawPath = (dir: string, folder: string, ...parts: (string | number[])[]): Buffer =>
    Buffer.concat([
      Buffer.from(`${dir}/${folder}/`),
      ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))),
    ]);

  test('safeNameOf: bytes of 0x80 and more, and %, as %XX; the rest as it is', () => {
    assert.equal(safeNameOf(Buffer.from([0x33, 0x2e, 0xff, 0xfe, 0x2e, 0x68])), '3.%FF%FE.h');
    assert.equal(safeNameOf(Buffer.from('1.%FF.h:2,S')), '1.%25FF.h:2,S', 'never the name of another file');
    assert.equal(safeNameOf(Buffer.from('1.é.h')), '1.%C3%A9.h');
  });

  test('are renamed once to a safe name, served, and keep their UIDL at every later login', async (t) => {
    const root = await tempDir(t);
    const { dir } = await buildMaildir(root, 'alice', [{ name: '1700000001.A.host', content: 'ok\n' }]);
    await writeFile(rawPath(dir, 'new', '1700000002.', [0xff, 0xfe], '.host'), 'from new\n');
    await writeFile(rawPath(dir, 'cur', '1700000003.', [0xc3, 0x28], '.host:2,S'), 'from cur\n');
    const logger = recordingLogger();
    const store = new MaildirStore({ root, logger });
    const expected = ['1700000001.A.host', '1700000002.%FF%FE.host', '1700000003.%C3(.host'];
    for (let login = 0; login < 2; login++) {
      const drop = await store.open({ name: 'alice' });
      assert.deepEqual(
        drop.messages.map((m) => m.uid),
        expected,
      );
      const texts = [];
      for (const m of drop.messages)
        texts.push((await readContent(await drop.read(m.uid, { signal }))).toString());
      assert.deepEqual(texts, ['ok\n', 'from new\n', 'from cur\n']);
      await drop.close();
    }
    assert.deepEqual(await readdir(join(dir, 'new')), []);
    assert.deepEqual((await readdir(join(dir, 'cur'))).sort(), [
      '1700000001.A.host:2,',
      '1700000002.%FF%FE.host:2,',
      '1700000003.%C3(.host:2,S',
    ]);
    const renamed = logger.lines.filter((l) => l.includes('message renamed: its file name was not UTF-8'));
    assert.equal(renamed.length, 2, 'logged once each, at the first login');
  });

  test('never replaces a file already at the safe name; a leftover second link is removed', async (t) => {
    const root = await tempDir(t);
    const { dir } = await buildMaildir(root, 'alice');
    // Another message already has the name the undecodable one would take.
    await writeFile(join(dir, 'cur', '1700000001.%FF.host:2,'), 'the other message\n');
    const clash = rawPath(dir, 'cur', '1700000001.', [0xff], '.host:2,');
    await writeFile(clash, 'clashing\n');
    // An earlier rename that stopped between link and unlink: one file under both names.
    await writeFile(join(dir, 'cur', '1700000002.%FE.host:2,'), 'linked twice\n');
    await link(
      join(dir, 'cur', '1700000002.%FE.host:2,'),
      rawPath(dir, 'cur', '1700000002.', [0xfe], '.host:2,'),
    );
    const logger = recordingLogger();
    const drop = await new MaildirStore({ root, logger }).open({ name: 'alice' });
    assert.deepEqual(
      drop.messages.map((m) => m.uid),
      ['1700000001.%FF.host', '1700000002.%FE.host'],
    );
    assert.equal(
      (await readContent(await drop.read('1700000001.%FF.host', { signal }))).toString(),
      'the other message\n',
    );
    await drop.close();
    assert.equal((await readFile(clash)).toString(), 'clashing\n', 'left where it was, not lost');
    assert.equal(logger.lines.filter((l) => l.includes('cannot rename a message')).length, 1);
    const raw = await readdir(join(dir, 'cur'), { encoding: 'buffer' });
    assert.equal(raw.length, 3, 'the clash, the other message, and one name for the twice-linked file');
  });
});
