import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashFile, lfForm, startInteropServer, type InteropServer } from './fixtures.js';
import { requireBinary } from './require-binary.js';
import { clientEnv, describeRun, runClient, type ClientResult } from './run-client.js';

/**
 * mpop with a temporary configuration file. mpop sends CAPA, pipelines its commands (the server
 * offers PIPELINING), uses UIDL to fetch only messages it has not seen (`only_new`, remembered in
 * `uidls_file`) and stores messages with LF line ends. With `received_header off` it adds nothing,
 * so each delivered file must be the expected bytes in LF form exactly.
 */

interface MpopSetup {
  readonly mpop: string;
  readonly srv: InteropServer;
  readonly uidls: string;
  /** Runs `mpop -C conf` once with these account settings; returns its result. */
  run(settings: readonly string[]): Promise<ClientResult>;
}

async function setUp(t: TestContext, big = false): Promise<MpopSetup | undefined> {
  const mpop = await requireBinary(t, 'mpop');
  if (mpop === undefined) return undefined;
  const srv = await startInteropServer(t, { big });
  const home = join(srv.work, 'home');
  await mkdir(home, { mode: 0o700 });
  const uidls = join(srv.work, 'uidls');
  let runs = 0;
  return {
    mpop,
    srv,
    uidls,
    async run(settings) {
      runs += 1;
      const conf = join(srv.work, `mpoprc-${runs}`);
      const text = [
        'account default',
        'host 127.0.0.1',
        `port ${srv.port}`,
        'tls off',
        `user ${srv.user}`,
        `password "${srv.password}"`,
        `uidls_file ${uidls}`,
        'received_header off',
        'timeout 20',
        ...settings,
        '',
      ].join('\n');
      await writeFile(conf, text, { mode: 0o600 });
      await chmod(conf, 0o600); // mpop refuses a configuration file that others can read
      // --debug prints the dialogue, message bodies included: keep only its start.
      return runClient(mpop, ['-C', conf, '--debug'], {
        env: clientEnv(home),
        keepStdoutBytes: 65_536,
      });
    },
  };
}

async function maildirFolder(dir: string): Promise<string> {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
  return dir;
}

/** Files mpop delivered into `<dir>/new`, in delivery order (its names end in `Q<counter>.<host>`). */
async function deliveredFiles(dir: string): Promise<string[]> {
  const counter = (name: string): number => Number(/Q(\d+)\./.exec(name)?.[1] ?? Number.NaN);
  const names = await readdir(join(dir, 'new'));
  return names.sort((a, b) => counter(a) - counter(b)).map((n) => join(dir, 'new', n));
}

test('mpop (auth user, keep on) delivers every message byte for byte; a second run fetches nothing new', async (t) => {
  const set = await setUp(t, true);
  if (set === undefined) return;
  const { srv } = set;
  const big = srv.big;
  assert.ok(big !== undefined);
  const out = await maildirFolder(join(srv.work, 'Maildir'));
  const settings = ['auth user', `delivery maildir ${out}`, 'keep on'];

  const closed = srv.nextClose();
  const first = await set.run(settings);
  assert.equal(first.code, 0, describeRun('mpop', first));
  assert.match(first.stdout.toString('latin1'), /^--> USER alice$/m);
  const files = await deliveredFiles(out);
  assert.equal(files.length, srv.fixtures.length + 1);
  for (const [i, fixture] of srv.fixtures.entries()) {
    assert.deepEqual(await readFile(files[i] as string), lfForm(fixture.expected), fixture.name);
  }
  const bigHash = await hashFile(files[srv.fixtures.length] as string);
  assert.equal(bigHash.bytes, big.size - big.lineCount);
  assert.equal(bigHash.sha256, big.sha256Lf);
  const firstInfo = await closed;
  assert.equal(firstInfo.summary.retrievedMessages, srv.fixtures.length + 1);
  assert.equal(firstInfo.summary.deletedMessages, 0);

  const uids = (await readFile(set.uidls, 'latin1')).split('\n');
  for (const uid of [...srv.fixtures.map((f) => f.uid), big.uid]) assert.ok(uids.includes(uid), uid);

  // Second run: every UID is known, so nothing is retrieved or delivered, and nothing deleted.
  const closedAgain = srv.nextClose();
  const second = await set.run(settings);
  assert.equal(second.code, 0, describeRun('mpop', second));
  assert.equal((await deliveredFiles(out)).length, srv.fixtures.length + 1);
  const secondInfo = await closedAgain;
  assert.equal(secondInfo.summary.retrievedMessages, 0);
  assert.equal(secondInfo.summary.deletedMessages, 0);
  assert.equal((await srv.messageFiles()).length, srv.fixtures.length + 1);
});

test('mpop (auth apop, keep off, mbox) deletes everything: the maildir is empty after its QUIT', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const mbox = join(srv.work, 'mbox');

  const closed = srv.nextClose();
  const result = await set.run(['auth apop', `delivery mbox ${mbox}`, 'keep off']);
  assert.equal(result.code, 0, describeRun('mpop', result));
  assert.match(result.stdout.toString('latin1'), /^--> APOP alice [0-9a-f]{32}$/m);
  assert.equal((await closed).summary.deletedMessages, srv.fixtures.length);
  assert.deepEqual(await srv.messageFiles(), []);

  // mbox: each message follows a "From " separator line and is followed by one empty line. No
  // fixture has a body line starting with "From ", so no ">From" quoting is expected.
  const text = (await readFile(mbox)).toString('latin1');
  const parts = text.split(/^From [^\n]*\n/m);
  assert.equal(parts.shift(), '');
  assert.equal(parts.length, srv.fixtures.length);
  for (const [i, fixture] of srv.fixtures.entries()) {
    assert.equal(parts[i], `${lfForm(fixture.expected).toString('latin1')}\n`, fixture.name);
  }
});
