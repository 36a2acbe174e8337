import assert from 'node:assert/strict';
import { chmod, chown, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { engineAccount } from '../helpers/engines/engine-process.js';
import { DOVECOT_MAIL_ACCOUNT, startDovecot } from '../helpers/engines/dovecot.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from './require-binary.js';
import { clientEnv, describeRun, runClient } from './run-client.js';

/**
 * Migration without re-download, against Debian's real Dovecot: Dovecot serves a maildrop (poplib
 * reads and retrieves, new mail arrives between sessions, fetchmail and mpop download everything
 * and remember the UIDLs), Dovecot stops, the maildir moves to Poplar's mail root, and the real
 * Poplar daemon serves it: every message Dovecot listed has Dovecot's UIDL, the same message
 * behind it, and fetchmail and mpop fetch only the messages they never saw.
 */

const LIMIT = { timeout: 120_000 };
const USER = 'alice';
const PASSWORD = 'migrate-Secret1';

/** Logs in, lists UIDLs, retrieves the messages in `retr` (marking them seen), hashes every message by UIDL, quits. */
const DRIVER = String.raw`
import hashlib, json, poplib, sys
spec = json.loads(sys.argv[1])
pop = poplib.POP3('127.0.0.1', spec['port'], timeout=20)
pop.user(spec['user'])
pop.pass_(spec['password'])
uidls = [line.decode('latin1').split(' ', 1)[1] for line in pop.uidl()[1]]
hashes = {}
for n, uidl in enumerate(uidls, 1):
    lines = pop.retr(n)[1] if n in spec['retr'] else pop.top(n, 100000)[1]
    hashes[uidl] = hashlib.sha256(b'\r\n'.join(lines)).hexdigest()
pop.quit()
print(json.dumps({'uidls': uidls, 'hashes': hashes}))
`;

interface Listing {
  readonly uidls: string[];
  readonly hashes: Record<string, string>;
}

interface Clients {
  readonly work: string;
  poplib(port: number, retr: readonly number[]): Promise<Listing>;
  /** fetchmail --keep with its idfile: resolves to the number of messages it delivered this run. */
  fetchmail(port: number): Promise<number>;
  /** mpop keep on, only_new on, with its uidls file: resolves to the number delivered this run. */
  mpop(port: number): Promise<number>;
}

async function clients(t: TestContext): Promise<Clients | undefined> {
  const python = await requireBinary(t, 'python3');
  const fetchmail = await requireBinary(t, 'fetchmail');
  const mpop = await requireBinary(t, 'mpop');
  if (python === undefined || fetchmail === undefined || mpop === undefined) return undefined;
  const work = await tempDir(t, 'poplar-migration-clients-');
  const home = join(work, 'home');
  await mkdir(home, { mode: 0o700 });
  const script = join(work, 'driver.py');
  await writeFile(script, DRIVER);
  const mda = join(work, 'mda.sh');
  await writeFile(mda, '#!/bin/sh\nset -e\ncat > "$1/$(date +%s%N).eml"\n');
  const fetched = join(work, 'fetchmail-out');
  const mpopOut = join(work, 'mpop-out');
  await mkdir(fetched);
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(mpopOut, sub), { recursive: true });
  const rcfile = join(work, 'fetchmailrc');
  await writeFile(
    rcfile,
    `poll 127.0.0.1\n  user "${USER}" there with password "${PASSWORD}"\n  sslproto ''\n  no rewrite\n`,
  );
  await chmod(rcfile, 0o600);
  const count = async (dir: string): Promise<number> => (await readdir(dir)).length;
  return {
    work,
    async poplib(port, retr) {
      const spec = JSON.stringify({ port, user: USER, password: PASSWORD, retr });
      const result = await runClient(python, ['-I', '-B', script, spec], { env: clientEnv(home) });
      assert.equal(result.code, 0, describeRun('poplib', result));
      return JSON.parse(result.stdout.toString('utf8')) as Listing;
    },
    async fetchmail(port) {
      const before = await count(fetched);
      const args = ['-f', rcfile, '--nodetach', '--nosyslog', '--verbose', '--pidfile', join(work, 'fm.pid')];
      args.push('--idfile', join(work, 'fetchids'), '-p', 'POP3', '--uidl', '--service', String(port));
      args.push('--keep', '--mda', `/bin/sh ${mda} ${fetched}`, '127.0.0.1');
      const result = await runClient(fetchmail, args, { env: clientEnv(home) });
      // 0: mail delivered; 1: no new mail.
      assert.ok(result.code === 0 || result.code === 1, describeRun('fetchmail', result));
      return (await count(fetched)) - before;
    },
    async mpop(port) {
      const before = await count(join(mpopOut, 'new'));
      const conf = join(work, 'mpoprc');
      const settings = [
        'account default',
        'host 127.0.0.1',
        `port ${port}`,
        'tls off',
        `user ${USER}`,
        `password "${PASSWORD}"`,
        'auth user',
        `uidls_file ${join(work, 'mpop-uidls')}`,
        'received_header off',
        `delivery maildir ${mpopOut}`,
        'keep on',
        'only_new on',
        'timeout 20',
        '',
      ];
      await writeFile(conf, settings.join('\n'), { mode: 0o600 });
      await chmod(conf, 0o600);
      const result = await runClient(mpop, ['-C', conf], { env: clientEnv(home) });
      assert.equal(result.code, 0, describeRun('mpop', result));
      return (await count(join(mpopOut, 'new'))) - before;
    },
  };
}

/** Delivers a message into `maildir/new` as a delivery agent would, owned by `account`. */
async function deliver(maildir: string, n: number, account?: { uid: number; gid: number }): Promise<void> {
  const name = `${1_750_000_000 + n}.M${n}P${100 + n}.mx.example`;
  const path = join(maildir, 'new', name);
  await writeFile(
    path,
    `From: sender@example.org\nSubject: message ${n}\n\nBody of message ${n}.\n.dot line\n`,
  );
  if (account !== undefined) await chown(path, account.uid, account.gid);
}

async function poplar(t: TestContext, cwd: string): Promise<RunningDaemon> {
  const args = ['--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0', '--no-monitor'];
  return startDaemon(t, { cwd, args: [...args, '--metrics-listen', '127.0.0.1:0'] });
}

test(
  'Dovecot -> Poplar: the same UIDL for every message Dovecot listed; fetchmail and mpop download nothing twice',
  LIMIT,
  async (t) => {
    const c = await clients(t);
    if (c === undefined) return;
    const cwd = await tempDir(t, 'poplar-migration-');
    await chmod(cwd, 0o755); // Dovecot's mail processes run as nobody
    const account = await engineAccount(DOVECOT_MAIL_ACCOUNT);
    const dovecotRoot = join(cwd, 'dovecot-mail');
    const maildir = join(dovecotRoot, USER);
    for (const sub of ['', 'cur', 'new', 'tmp']) {
      await mkdir(join(maildir, sub), { recursive: true });
      if (account !== undefined) await chown(join(maildir, sub), account.uid, account.gid);
    }
    if (account !== undefined) await chown(dovecotRoot, account.uid, account.gid);
    for (let n = 1; n <= 3; n++) await deliver(maildir, n, account);

    const dovecot = await startDovecot(t, { mailRoot: dovecotRoot, users: { [USER]: PASSWORD } });
    const first = await c.poplib(dovecot.port, [1, 2]);
    assert.equal(first.uidls.length, 3);
    // Dovecot's default pop3_uidl_format %08Xu%08Xv: its %X modifier prints lower-case hex.
    for (const uidl of first.uidls) assert.match(uidl, /^[0-9a-f]{16}$/);
    for (let n = 4; n <= 5; n++) await deliver(maildir, n, account);
    assert.equal(await c.fetchmail(dovecot.port), 5);
    assert.equal(await c.mpop(dovecot.port), 5);
    await deliver(maildir, 6, account);
    const last = await c.poplib(dovecot.port, [6]);
    assert.equal(last.uidls.length, 6);
    assert.deepEqual(last.uidls.slice(0, 3), first.uidls, 'Dovecot itself kept its UIDLs');
    await dovecot.stop();
    assert.match(await readFile(join(maildir, 'dovecot-uidlist'), 'latin1'), /^3 V\d+ N7/);

    // The move: the maildir as Dovecot left it (its index files too), and one message Dovecot never saw.
    await deliver(maildir, 7, account);
    await mkdir(join(cwd, 'mail'));
    await rename(maildir, join(cwd, 'mail', USER));
    await writeFile(join(cwd, 'users'), `${USER}:{PLAIN}${PASSWORD}\n`);
    const daemon = await poplar(t, cwd);
    const served = await c.poplib(daemon.port, []);
    assert.equal(served.uidls.length, 7);
    assert.deepEqual(served.uidls.slice(0, 6), last.uidls, 'every message keeps its Dovecot UIDL, in order');
    for (const uidl of last.uidls) assert.equal(served.hashes[uidl], last.hashes[uidl], `message ${uidl}`);
    assert.equal(served.uidls[6], '1750000007.M7P107.mx.example', 'new mail: Poplar own UIDL');
    const migrated = daemon.logs.find((e) => e.msg === 'UIDLs kept from dovecot-uidlist');
    assert.equal(migrated?.['messages'], 6);
    assert.ok((await stat(join(cwd, 'mail', USER, '.poplar-uidl'))).isFile());

    // Messages 6 (delivered to Dovecot after they last ran) and 7 (after the move): nothing else.
    assert.equal(await c.fetchmail(daemon.port), 2, 'fetchmail fetches only the messages it never saw');
    assert.equal(await c.mpop(daemon.port), 2, 'mpop fetches only the messages it never saw');
    const again = await c.poplib(daemon.port, []);
    assert.deepEqual(again.uidls, served.uidls, 'the UIDLs stay');
    assert.equal(await c.fetchmail(daemon.port), 0);
    assert.equal(await c.mpop(daemon.port), 0);
    const restarted = daemon.logs.filter((e) => e.msg === 'UIDLs kept from dovecot-uidlist').length;
    assert.equal(restarted, 1, 'converted once');
  },
);
