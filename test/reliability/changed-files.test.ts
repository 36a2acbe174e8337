// Files changed by another program under an open POP3 session (an MDA, a mail client on the same
// maildir, an operator): the session keeps its snapshot (RFC 1939), a message that vanished is
// answered with a clear -ERR while the others still work, DELE and QUIT still work, nothing
// crashes, and the next login sees the new state.
import assert from 'node:assert/strict';
import { readdir, rename, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { pop3Form } from './crash-harness.js';
import { countOf } from '../../src/text.js';

const GONE = '-ERR [SYS/TEMP] message is no longer available';
const NAMES = ['1700000001.M1P1.host', '1700000002.M2P1.host', '1700000003.M3P1.host'];
const CONTENTS = [
  'Subject: one\n\nfirst message, bare LF\n',
  'Subject: two\r\n\r\n.dot line\r\nsecond\r\n',
  'Subject: three\n\nthird\n',
].map((c) => Buffer.from(c));
const content = (i: number): Buffer => CONTENTS[i] as Buffer;
/**
 * Known gap: a message file whose content changed under the same name is sent with
 * the snapshot's size in `+OK n octets` (read() does not notice), and the size index, keyed by
 *  the base name only, keeps serving the old size at later logins (Maildir files never change in
 * place, so Poplar trusts the name). Remove this once handled.
 */
const KNOWN_BUG_REPLACED = {
  todo: 'replaced content: RETR announces the old size, the size index keeps it',
};

interface Setup {
  readonly dir: string;
  readonly cur: string;
  readonly port: number;
}

/** alice's three messages in cur/, served by an in-process server on the Maildir store. */
async function setUp(t: TestContext): Promise<Setup> {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(
    root,
    'alice',
    NAMES.map((name, i) => ({ name: `${name}:2,`, folder: 'cur', content: content(i) })),
  );
  const { port } = await startServer(t, { store: new MaildirStore({ root }) });
  return { dir, cur: join(dir, 'cur'), port };
}

const octets = (messages: readonly Buffer[]): number =>
  messages.reduce((sum, m) => sum + pop3Form(m).length, 0);

async function login(port: number, messages: readonly Buffer[]): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  await client.login('alice', 'pw');
  const stat = await client.command('STAT');
  assert.equal(stat, `+OK ${messages.length} ${octets(messages)}`);
  return client;
}

async function assertRetr(client: Pop3TestClient, msgNo: number, message: Buffer): Promise<void> {
  const expected = pop3Form(message);
  assert.equal(await client.command(`RETR ${msgNo}`), `+OK ${expected.length} octets`);
  assert.deepEqual(await client.readBody(), expected);
}

async function quit(client: Pop3TestClient, left: number): Promise<void> {
  assert.equal(await client.command('QUIT'), `+OK Poplar signing off (${countOf(left, 'message')} left)`);
  await client.closed();
}

/** LIST and UIDL of a new session: what is on disk now. */
async function assertListing(port: number, expected: readonly { name: string; content: Buffer }[]) {
  const client = await login(
    port,
    expected.map((e) => e.content),
  );
  const uidl = await client.multi('UIDL');
  assert.deepEqual(
    uidl.lines,
    expected.map((e, i) => `${i + 1} ${e.name}`),
  );
  const list = await client.multi('LIST');
  assert.deepEqual(
    list.lines,
    expected.map((e, i) => `${i + 1} ${pop3Form(e.content).length}`),
  );
  for (const [i, e] of expected.entries()) await assertRetr(client, i + 1, e.content);
  await quit(client, expected.length);
}

test('a message deleted by another program: RETR and TOP say so, the rest works, DELE and QUIT work', async (t) => {
  const s = await setUp(t);
  const client = await login(s.port, CONTENTS);
  await unlink(join(s.cur, `${NAMES[1]}:2,`));
  assert.equal(await client.command('RETR 2'), GONE);
  assert.equal(await client.command('TOP 2 0'), GONE);
  await assertRetr(client, 1, content(0));
  await assertRetr(client, 3, content(2));
  // Still listed: the session's snapshot does not change (RFC 1939).
  assert.equal(await client.command('LIST 2'), `+OK 2 ${pop3Form(content(1)).length}`);
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.equal(await client.command('DELE 3'), '+OK message 3 deleted');
  await quit(client, 1);
  assert.deepEqual(await readdir(s.cur), [`${NAMES[0]}:2,S`]);
  await assertListing(s.port, [{ name: NAMES[0] as string, content: content(0) }]);
});

test('a message renamed by another program (a flag change) is still read, marked and deleted', async (t) => {
  const s = await setUp(t);
  const client = await login(s.port, CONTENTS);
  await rename(join(s.cur, `${NAMES[0]}:2,`), join(s.cur, `${NAMES[0]}:2,F`));
  await rename(join(s.cur, `${NAMES[1]}:2,`), join(s.cur, `${NAMES[1]}:2,R`));
  await assertRetr(client, 1, content(0));
  assert.equal(await client.command('TOP 2 0'), '+OK top of message follows');
  assert.deepEqual(await client.readLines(), ['Subject: two', '']);
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  await quit(client, 2);
  assert.deepEqual((await readdir(s.cur)).sort(), [`${NAMES[0]}:2,FS`, `${NAMES[2]}:2,`]);
  await assertListing(s.port, [
    { name: NAMES[0] as string, content: content(0) },
    { name: NAMES[2] as string, content: content(2) },
  ]);
});

test('mail delivered during a session is not in it, and is in the next one', async (t) => {
  const s = await setUp(t);
  const client = await login(s.port, CONTENTS);
  const late = Buffer.from('Subject: late\n\narrived during the session\n');
  const name = '1700000009.M9P1.host';
  await writeFile(join(s.dir, 'tmp', name), late);
  await rename(join(s.dir, 'tmp', name), join(s.dir, 'new', name));
  assert.match(await client.command('LIST 4'), /^-ERR no such message/);
  assert.equal((await client.multi('UIDL')).lines.length, 3);
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  await quit(client, 2);
  await assertListing(s.port, [
    { name: NAMES[1] as string, content: content(1) },
    { name: NAMES[2] as string, content: content(2) },
    { name, content: late },
  ]);
});

test(
  'a message whose content another program replaced: a well-formed reply, then its new size',
  KNOWN_BUG_REPLACED,
  async (t) => {
    const s = await setUp(t);
    const client = await login(s.port, CONTENTS);
    // Replaced the Maildir way (a new file renamed over the old one), and one cut short in place.
    const replaced = Buffer.from('Subject: two, edited\n\na different, longer body than before\n');
    await writeFile(join(s.dir, 'tmp', 'edit'), replaced);
    await rename(join(s.dir, 'tmp', 'edit'), join(s.cur, `${NAMES[1]}:2,`));
    await truncate(join(s.cur, `${NAMES[2]}:2,`), 8);
    for (const [msgNo, now] of [
      [2, replaced],
      [3, content(2).subarray(0, 8)],
    ] as const) {
      // Either refused, or sent in full and terminated: never a broken reply.
      const status = await client.command(`RETR ${msgNo}`);
      if (status.startsWith('+OK')) {
        const body = await client.readBody();
        assert.deepEqual(body, pop3Form(now), `RETR ${msgNo}`);
        assert.equal(status, `+OK ${body.length} octets`, `RETR ${msgNo} announces what it sends`);
      } else {
        assert.match(status, /^-ERR \[SYS\/TEMP\] /);
      }
    }
    await assertRetr(client, 1, content(0));
    assert.equal(await client.command('NOOP'), '+OK');
    await quit(client, 3);
    // The size index must not keep the old sizes.
    await assertListing(s.port, [
      { name: NAMES[0] as string, content: content(0) },
      { name: NAMES[1] as string, content: replaced },
      { name: NAMES[2] as string, content: content(2).subarray(0, 8) },
    ]);
  },
);

test('cur/ removed under a session: DELE and QUIT work, the next login finds an empty cur/', async (t) => {
  const s = await setUp(t);
  const client = await login(s.port, CONTENTS);
  await rm(s.cur, { recursive: true });
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await client.command('NOOP'), '+OK');
  // Gone already counts as deleted.
  await quit(client, 2);
  await assertListing(s.port, []);
  assert.deepEqual(await readdir(s.cur), [], 'cur/ is made again');
});

test('cur/ removed under a session: RETR and TOP give a clear -ERR and the session goes on', async (t) => {
  const s = await setUp(t);
  const client = await login(s.port, CONTENTS);
  await rm(s.cur, { recursive: true });
  assert.equal(await client.command('RETR 1'), GONE);
  assert.equal(await client.command('TOP 3 1'), GONE);
  assert.equal(await client.command('NOOP'), '+OK');
  await quit(client, 3);
});

test('the whole maildir removed under a session: QUIT works, the next login gets a new one', async (t) => {
  const s = await setUp(t);
  const client = await login(s.port, CONTENTS);
  await rm(s.dir, { recursive: true });
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  await quit(client, 2);
  await assertListing(s.port, []);
  const made = (await readdir(s.dir)).filter((n) => !n.startsWith('.'));
  assert.deepEqual(made.sort(), ['cur', 'new', 'tmp']);
});
