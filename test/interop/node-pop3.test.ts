import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import Pop3Command from 'node-pop3';
import { startInteropServer, topOf, type InteropServer } from './fixtures.js';

/**
 * The `node-pop3` npm package (a devDependency, so never skipped). Its quirks, all on the client
 * side and documented here rather than worked around in the server:
 *
 * - It does not remove byte-stuffing: RETR and TOP return the body as sent, `..` included. The
 *   test compares with its own stuffed form of the expected bytes, so the server's stuffing is
 *   checked too.
 * - It finds the end of a multi-line reply by looking at the end of each TCP chunk. When the
 *   terminator arrives in its own chunk the body keeps its final CRLF; when it arrives with the
 *   last line, the CRLF goes with it. So one trailing CRLF is ignored in the comparison.
 * - It decodes bodies as UTF-8, so bytes that are not UTF-8 come back as U+FFFD: the comparison
 *   decodes the expected bytes the same way (the byte-exact check of that fixture is in curl and poplib).
 * - It concatenates every chunk onto the whole body so far (quadratic), so the 20 MiB message
 *   takes seconds: it is left to the other clients.
 */

/** Byte-stuffing written for the test: a line that starts with `.` gets one more. */
function stuff(expected: Buffer): Buffer {
  const text = expected.toString('latin1');
  return Buffer.from(text.replace(/^\./gm, '..'), 'latin1');
}

const withoutFinalCrlf = (s: string): string => (s.endsWith('\r\n') ? s.slice(0, -2) : s);

function connect(t: TestContext, srv: InteropServer, password = srv.password): Pop3Command {
  const pop = new Pop3Command({
    user: srv.user,
    password,
    host: '127.0.0.1',
    port: srv.port,
    timeout: 20_000,
  });
  t.after(async () => {
    // QUIT if still logged in (a no-op once QUIT was sent and the socket closed).
    await pop.QUIT().catch(() => undefined);
  });
  return pop;
}

test('node-pop3: connect, UIDL, LIST, RETR of each fixture, QUIT', async (t) => {
  const srv = await startInteropServer(t);
  const pop = connect(t, srv);
  assert.deepEqual(
    await pop.UIDL(),
    srv.fixtures.map((f, i) => [String(i + 1), f.uid]),
  );
  assert.deepEqual(
    await pop.LIST(),
    srv.fixtures.map((f, i) => [String(i + 1), String(f.expected.length)]),
  );
  const sizes = srv.fixtures.map((f) => f.expected.length);
  assert.equal(await pop.STAT(), `${sizes.length} ${sizes.reduce((a, b) => a + b, 0)}`);
  for (const [i, fixture] of srv.fixtures.entries()) {
    const body = await pop.RETR(i + 1);
    assert.equal(
      withoutFinalCrlf(body),
      withoutFinalCrlf(stuff(fixture.expected).toString('utf8')),
      `RETR ${i + 1} (${fixture.name})`,
    );
  }
  const closed = srv.nextClose();
  assert.match(await pop.QUIT(), /signing off/);
  const info = await closed;
  assert.equal(info.summary.retrievedMessages, srv.fixtures.length);
  assert.equal(info.summary.deletedMessages, 0);
  assert.equal((await srv.messageFiles()).length, srv.fixtures.length);
});

test('node-pop3: TOP 1 2 returns the header and two body lines, stuffed', async (t) => {
  const srv = await startInteropServer(t);
  const pop = connect(t, srv);
  const dots = srv.fixtures[0];
  assert.ok(dots !== undefined);
  const expected = Buffer.concat(topOf(dots.expected, 2).map((l) => Buffer.concat([l, Buffer.from('\r\n')])));
  assert.equal(withoutFinalCrlf(await pop.TOP(1, 2)), withoutFinalCrlf(stuff(expected).toString('utf8')));
  await pop.QUIT();
});

test('node-pop3: DELE then QUIT removes the file; a wrong password is rejected with [AUTH]', async (t) => {
  const srv = await startInteropServer(t);
  const pop = connect(t, srv);
  assert.match(await pop.DELE(2), /^message 2 deleted$/);
  const closed = srv.nextClose();
  await pop.QUIT();
  assert.equal((await closed).summary.deletedMessages, 1);
  const left = (await srv.messageFiles()).map((f) => (f.split('/')[1] ?? '').split(':')[0]);
  assert.deepEqual(
    left,
    srv.fixtures.filter((_, i) => i !== 1).map((f) => f.uid),
  );

  const intruder = connect(t, srv, 'wrong-password');
  await assert.rejects(intruder.STAT(), (error: Error) => {
    assert.match(error.message, /^\[AUTH\] /);
    return true;
  });
});
