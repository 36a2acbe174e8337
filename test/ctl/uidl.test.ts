// `poplarctl uidl USER` and `poplarctl uidl import USER FILE` against a real daemon (docs/migration.md).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { dialog, Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const env = { POPLAR_TOKEN: '123456789abcdef1' }; // demo mode's admin token
const NAMES = ['1700000001.M1P1.mx', '1700000002.M2P1.mx', '1700000003.M3P1.mx'];

async function setUp(t: TestContext) {
  const cwd = await tempDir(t);
  const mail = join(cwd, 'mail');
  await buildMaildir(
    mail,
    'foo',
    NAMES.map((name, i) => ({ name, content: `Subject: ${i + 1}\r\n\r\nbody\r\n` })),
  );
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\n');
  const d = await startDaemon(t, { args: ['--config', 'poplar.toml', '-m', 'mail', '-p', '0'], cwd });
  const port = String(monitorPort(d.started, '127.0.0.1'));
  const ctl = (args: readonly string[]): Promise<CtlResult> =>
    runCtl(t, ['--host', '127.0.0.1', '--port', port, ...args], { env });
  const uidls = async (): Promise<string[]> => {
    const [, , , list] = await dialog(d.port, ['USER foo', 'PASS bar', 'UIDL', 'QUIT']);
    return (list ?? '').split('\n').slice(1);
  };
  return { cwd, mail, d, ctl, uidls };
}

test(
  'uidl import: counts, pieces over the request size, served by POP3 UIDL, shown by uidl USER',
  LIMIT,
  async (t) => {
    const { cwd, mail, ctl, uidls } = await setUp(t);
    const before = await ctl(['uidl', 'foo']);
    assert.equal(before.code, 0, before.stderr);
    const listed = NAMES.map((n, i) => `${i + 1} ${n} poplar ${n}:2,`).join('\n');
    assert.equal(before.stdout, `${listed}\nno UIDL history yet\n`);

    const unknown = Array.from({ length: 300 }, (_, i) => `X${i} 1690000000.M${i}P9.gone.example.org:2,S`);
    const file = join(cwd, 'uidls.txt');
    await writeFile(
      file,
      [
        `OLD-1 ${NAMES[0]}:2,S`, // flags are ignored: matched by base name
        `OLD-2 ${NAMES[1]}`,
        'no-file-name',
        `caf\u00e9 ${NAMES[2]}`, // not 0x21-0x7E
        `OLD-1 ${NAMES[2]}`, // already message 1's
        ...unknown,
        '',
      ].join('\n'),
    );
    assert.ok((await readFile(file)).length > 8192, 'the file goes in more than one request');
    const run = await ctl(['uidl', 'import', 'foo', file]);
    assert.equal(run.stderr, '');
    assert.equal(run.stdout, 'foo: 2 imported, 300 unknown file names, 2 invalid lines, 1 clashes\n');
    assert.equal(run.code, 0);
    assert.deepEqual(await uidls(), ['1 OLD-1', '2 OLD-2', `3 ${NAMES[2]}`]);
    const after = await ctl(['--json', 'uidl', 'foo']);
    const doc = JSON.parse(after.stdout) as { messages: { uidl: string; source: string }[] };
    assert.deepEqual(
      doc.messages.map((m) => [m.uidl, m.source]),
      [
        ['OLD-1', 'imported'],
        ['OLD-2', 'imported'],
        [NAMES[2], 'poplar'],
      ],
    );
    assert.match(await readFile(join(mail, 'foo', '.poplar-uidl'), 'utf8'), /^imported OLD-1 1700000001/m);
  },
);

test(
  'uidl import is refused while the user has a session: the maildrop lock, as a second login',
  LIMIT,
  async (t) => {
    const { cwd, d, ctl, uidls } = await setUp(t);
    const file = join(cwd, 'uidls.txt');
    await writeFile(file, `NEW-1 ${NAMES[0]}\n`);
    const client = await Pop3TestClient.connect(d.port);
    try {
      await client.command('USER foo');
      assert.match(await client.command('PASS bar'), /^\+OK/);
      const refused = await ctl(['uidl', 'import', 'foo', file]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /has a POP3 session open/);
    } finally {
      client.close();
    }
    // Once the session has ended the import goes through.
    let done: CtlResult | undefined;
    for (let i = 0; i < 50 && done?.code !== 0; i++) done = await ctl(['uidl', 'import', 'foo', file]);
    assert.equal(done?.stdout, 'foo: 1 imported, 0 unknown file names, 0 invalid lines, 0 clashes\n');
    assert.equal((await uidls())[0], '1 NEW-1');
  },
);

test(
  'uidl USER shows the history: the first logout, an import, and UIDLs that changed with the same count',
  LIMIT,
  async (t) => {
    const { cwd, mail, ctl, uidls } = await setUp(t);
    const history = async (): Promise<string[]> => {
      const run = await ctl(['uidl', 'foo']);
      assert.equal(run.code, 0, run.stderr);
      const [, past = ''] = run.stdout.split('UIDL history (oldest first):\n');
      return past
        .trimEnd()
        .split('\n')
        .filter((l) => l !== '');
    };
    await uidls();
    const first = await history();
    assert.equal(first.length, 1);
    assert.match(first[0] ?? '', /^\S+Z logout 3 [0-9a-f]{16} first list recorded$/);

    // A session that changes nothing adds nothing.
    await uidls();
    assert.deepEqual(await history(), first);

    await writeFile(join(cwd, 'one.txt'), `OLD-1 ${NAMES[0]}\n`);
    assert.equal((await ctl(['uidl', 'import', 'foo', join(cwd, 'one.txt')])).code, 0);
    const afterImport = await history();
    assert.equal(afterImport.length, 2);
    assert.match(afterImport[1] ?? '', / import 3 [0-9a-f]{16} 1 UIDLs imported \(poplarctl uidl import\)$/);
    // The import's fingerprint is the list the next session sees: its logout adds nothing.
    assert.equal((await uidls())[0], '1 OLD-1');
    assert.equal((await history()).length, 2);

    // The map changed behind Poplar's back: the same three messages, another UIDL for one.
    const map = join(mail, 'foo', '.poplar-uidl');
    await writeFile(map, (await readFile(map, 'utf8')).replace('OLD-1', 'OTHER-1'));
    assert.equal((await uidls())[0], '1 OTHER-1');
    const changed = await history();
    assert.equal(changed.length, 3);
    assert.match(
      changed[2] ?? '',
      / logout 3 [0-9a-f]{16} UIDLs changed since the last entry with no change in count/,
    );
  },
);
