import assert from 'node:assert/strict';
import { chmod, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashFile, lfForm, startInteropServer, type InteropServer } from './fixtures.js';
import { requireBinary } from './require-binary.js';
import { clientEnv, describeRun, runClient, type ClientResult } from './run-client.js';

/**
 * fetchmail in the foreground, delivering each message to an MDA that saves it as a numbered file.
 *
 * What fetchmail changes, and what the comparison therefore normalises:
 * - It prepends a `Received:` header field (three lines); the test checks it and removes it.
 * - It hands the MDA LF line ends (CRLF from the wire becomes LF); the expected bytes are compared
 *   in that LF form. Everything else (the un-stuffed dot lines, 8-bit bytes, the final line end the
 *   server added) must arrive unchanged.
 *
 * fetchmail 6.4 requires TLS by default: it sends STLS even though CAPA does not offer it and
 * gives up when that fails ("upgrade to TLS failed"). `sslproto ''` in the rcfile turns that off.
 * `no rewrite` keeps it from rewriting addresses in the header.
 */

const MDA = `#!/bin/sh
# Saves the message on standard input as the next numbered file in the directory "$1".
set -e
n=$(ls "$1" | wc -l)
cat > "$1/$(printf '%03d' $((n + 1))).eml"
`;

const RECEIVED = /^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/;

interface Fetchmail {
  readonly fetchmail: string;
  readonly srv: InteropServer;
  /** Runs fetchmail once; messages go to a new numbered folder. Resolves to the result and that folder. */
  run(options: { keep: boolean }): Promise<{ result: ClientResult; out: string }>;
}

async function setUp(t: TestContext, big: boolean): Promise<Fetchmail | undefined> {
  const fetchmail = await requireBinary(t, 'fetchmail');
  if (fetchmail === undefined) return undefined;
  const srv = await startInteropServer(t, { big });
  const home = join(srv.work, 'home');
  await mkdir(home, { mode: 0o700 });
  const mda = join(srv.work, 'mda.sh');
  await writeFile(mda, MDA);
  const rcfile = join(srv.work, 'fetchmailrc');
  await writeFile(
    rcfile,
    [
      'poll 127.0.0.1',
      `  user "${srv.user}" there with password "${srv.password}"`,
      "  sslproto ''",
      '  no rewrite',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await chmod(rcfile, 0o600); // fetchmail refuses an rcfile others can read
  let runs = 0;
  return {
    fetchmail,
    srv,
    async run({ keep }) {
      runs += 1;
      const out = join(srv.work, `out-${runs}`);
      await mkdir(out);
      const args = [
        '-f',
        rcfile,
        '--nodetach',
        '--nosyslog',
        '--verbose',
        '--pidfile',
        join(srv.work, 'fetchmail.pid'),
        '--idfile',
        join(srv.work, 'fetchids'),
        '-p',
        'POP3',
        '--service',
        String(srv.port),
        '--all',
        ...(keep ? ['--keep'] : []),
        '--mda',
        `/bin/sh ${mda} ${out}`,
        '127.0.0.1',
      ];
      const result = await runClient(fetchmail, args, { env: clientEnv(home) });
      return { result, out };
    },
  };
}

/** The delivered files of one run, in delivery order. */
async function delivered(out: string): Promise<string[]> {
  return (await readdir(out)).sort().map((name) => join(out, name));
}

/** Checks fetchmail's Received field and returns the message without it. */
function withoutReceived(file: Buffer, what: string): Buffer {
  const match = RECEIVED.exec(file.toString('latin1'));
  assert.ok(match !== null, `${what}: no Received field first`);
  assert.match(match[0], /with POP3 \(fetchmail-/, what);
  return file.subarray(match[0].length);
}

test('fetchmail --all --keep delivers every message, the 20 MiB one included, and deletes nothing', async (t) => {
  const set = await setUp(t, true);
  if (set === undefined) return;
  const { srv } = set;
  const big = srv.big;
  assert.ok(big !== undefined);
  const closed = srv.nextClose();
  const { result, out } = await set.run({ keep: true });
  assert.equal(result.code, 0, describeRun('fetchmail', result));
  // fetchmail's default (auth any) takes CRAM-MD5 when CAPA's SASL line offers it.
  assert.match(result.stderr + result.stdout.toString('latin1'), /POP3> AUTH CRAM-MD5/);
  const files = await delivered(out);
  assert.equal(files.length, srv.fixtures.length + 1, `delivered: ${files.join(', ')}`);
  for (const [i, fixture] of srv.fixtures.entries()) {
    const file = await readFile(files[i] as string);
    assert.deepEqual(withoutReceived(file, fixture.name), lfForm(fixture.expected), fixture.name);
  }
  // The big one: find the end of the Received field in its first bytes, then hash the rest as a stream.
  const bigFile = files[srv.fixtures.length] as string;
  const head = Buffer.alloc(4096);
  const handle = await open(bigFile);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const skip = head.length - withoutReceived(head, 'big').length;
  const { sha256, bytes } = await hashFile(bigFile, skip);
  assert.equal(bytes, big.size - big.lineCount); // one CR fewer per line
  assert.equal(sha256, big.sha256Lf);

  const info = await closed;
  assert.equal(info.summary.retrievedMessages, srv.fixtures.length + 1);
  assert.equal(info.summary.deletedMessages, 0);
  assert.equal((await srv.messageFiles()).length, srv.fixtures.length + 1);
});

test('fetchmail without --keep deletes what it delivered: the maildir is empty after its QUIT', async (t) => {
  const set = await setUp(t, false);
  if (set === undefined) return;
  const { srv } = set;

  const closed = srv.nextClose();
  const first = await set.run({ keep: false });
  assert.equal(first.result.code, 0, describeRun('fetchmail', first.result));
  const files = await delivered(first.out);
  assert.equal(files.length, srv.fixtures.length);
  for (const [i, fixture] of srv.fixtures.entries()) {
    const file = await readFile(files[i] as string);
    assert.deepEqual(withoutReceived(file, fixture.name), lfForm(fixture.expected), fixture.name);
  }
  assert.equal((await closed).summary.deletedMessages, srv.fixtures.length);
  assert.deepEqual(await srv.messageFiles(), []);

  // Nothing left: fetchmail's exit status 1 means "no mail".
  const second = await set.run({ keep: false });
  assert.equal(second.result.code, 1, describeRun('fetchmail', second.result));
  assert.deepEqual(await delivered(second.out), []);
});
