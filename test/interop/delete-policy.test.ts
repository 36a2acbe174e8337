// poplar_delete and EXPIRE end to end: the real daemon with a users file whose poplar_* fields set
// each user's policy, Python's poplib deleting (DELE, QUIT), then the files on disk. Thunderbird's
// "at most N days" with leave-on-server is reproduced with poplib, sending what Thunderbird sends
// (UIDL, RETR of what is new, DELE of what its popstate says is older than N days, QUIT):
// Thunderbird itself is not installed here. Times in the past are written into the files (the
// client's popstate, the server's .poplar-policy), never waited for.
import assert from 'node:assert/strict';
import { readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { POLICY_STATE_FILE } from '../../src/mailstore/maildir/policy-state.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from './require-binary.js';
import { clientEnv, describeRun, runClient } from './run-client.js';

const DAY_S = 86_400;
const BASES = ['1700000001.a.host', '1700000002.b.host', '1700000003.c.host'];

/**
 * A POP3 client the way Thunderbird runs one with "Leave messages on server" and "For at most N
 * days": popstate (a JSON file: UIDL to the time it was first downloaded) stands for its
 * popstate.dat. It logs in, asks UIDL, RETRs what it has not seen, DELEs what it downloaded more
 * than N days ago, and QUITs; it prints what it did as JSON.
 */
const THUNDERBIRD = String.raw`
import json, poplib, sys, time
host, port, user, password, popstate, days = sys.argv[1:7]
try:
    seen = json.load(open(popstate))
except FileNotFoundError:
    seen = {}
now = time.time()
pop = poplib.POP3(host, int(port), timeout=20)
pop.user(user)
pop.pass_(password)
resp, lines, _ = pop.uidl()
numbers = {}
for line in lines:
    n, uid = line.decode().split(' ', 1)
    numbers[uid] = int(n)
fetched, deleted = [], []
for uid, n in numbers.items():
    if uid not in seen:
        pop.retr(n)
        seen[uid] = now
        fetched.append(uid)
for uid, n in numbers.items():
    if now - seen[uid] > float(days) * 86400:
        pop.dele(n)
        deleted.append(uid)
quit = pop.quit().decode()
json.dump(seen, open(popstate, 'w'))
print(json.dumps({'fetched': fetched, 'deleted': deleted, 'quit': quit}))
`;

/** A plain POP3 client: UIDL, then RETR and DELE of the given UIDLs, QUIT; prints the replies. */
const CLIENT = String.raw`
import json, poplib, sys
host, port, user, password = sys.argv[1:5]
spec = json.loads(sys.argv[5])
pop = poplib.POP3(host, int(port), timeout=20)
pop.user(user)
pop.pass_(password)
resp, lines, _ = pop.uidl()
numbers = {l.decode().split(' ', 1)[1]: int(l.decode().split(' ', 1)[0]) for l in lines}
for uid in spec.get('retr', []):
    pop.retr(numbers[uid])
replies = [pop.dele(numbers[uid]).decode() for uid in spec.get('dele', [])]
print(json.dumps({'uidl': list(numbers), 'dele': replies, 'quit': pop.quit().decode()}))
`;

interface Fixture {
  readonly python: string;
  readonly cwd: string;
  readonly mail: string;
  readonly daemon: RunningDaemon;
}

const USERS: Readonly<Record<string, string>> = {
  plain: '',
  hide: 'poplar_delete=hide',
  trash: 'poplar_delete=move:Trash',
  keep: 'poplar_delete=keep-days:30',
  tb: 'poplar_delete=keep-days:14',
  expire: 'poplar_expire=5 poplar_delete=move:Trash',
};

async function setUp(t: TestContext): Promise<Fixture | undefined> {
  const python = await requireBinary(t, 'python3');
  if (python === undefined) return undefined;
  const cwd = await realpath(await tempDir(t));
  const mail = join(cwd, 'mail');
  const lines = Object.entries(USERS).map(([user, fields]) => `${user}:{PLAIN}pw-${user}::::::${fields}`);
  await writeFile(join(cwd, 'users'), `${lines.join('\n')}\n`);
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\n');
  for (const user of Object.keys(USERS)) {
    await buildMaildir(
      mail,
      user,
      BASES.map((base) => ({ name: base, content: `Subject: ${base}\r\n\r\nbody of ${base}\r\n` })),
    );
  }
  const daemon = await startDaemon(t, {
    cwd,
    args: ['--config', 'poplar.toml', '--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0'],
  });
  return { python, cwd, mail, daemon };
}

async function run(f: Fixture, script: string, args: readonly string[]): Promise<Record<string, unknown>> {
  const result = await runClient(
    f.python,
    ['-I', '-B', '-c', script, '127.0.0.1', String(f.daemon.port), ...args],
    {
      env: clientEnv(f.cwd),
    },
  );
  assert.equal(result.code, 0, describeRun('python3 poplib', result));
  return JSON.parse(result.stdout.toString('utf8')) as Record<string, unknown>;
}

const session = (f: Fixture, user: string, spec: { retr?: string[]; dele?: string[] }) =>
  run(f, CLIENT, [user, `pw-${user}`, JSON.stringify(spec)]);
const list = async (path: string): Promise<string[]> =>
  (await readdir(path).catch(() => [] as string[])).sort();

test('each poplar_delete mode with poplib: what is listed after, and what is on disk', async (t) => {
  const f = await setUp(t);
  if (f === undefined) return;
  const dele = [BASES[1] as string];
  for (const user of ['plain', 'hide', 'trash', 'keep']) {
    const done = await session(f, user, { dele });
    assert.deepEqual(done['uidl'], BASES, user);
    assert.match(done['quit'] as string, /^\+OK .*\(2 messages left\)$/, user);
    assert.deepEqual((await session(f, user, {}))['uidl'], [BASES[0], BASES[2]], `${user}: listed after`);
  }
  const cur = (user: string): Promise<string[]> => list(join(f.mail, user, 'cur'));
  const all = BASES.map((b) => `${b}:2,`);
  // expunge: gone from disk.
  assert.deepEqual(await cur('plain'), [all[0], all[2]]);
  // hide: still in cur/, named in the state file.
  assert.deepEqual(await cur('hide'), all);
  assert.equal(
    await readFile(join(f.mail, 'hide', POLICY_STATE_FILE), 'utf8'),
    `poplar-policy 1\nH ${BASES[1]}\n`,
  );
  // move:Trash: in .Trash/cur/, byte for byte.
  assert.deepEqual(await cur('trash'), [all[0], all[2]]);
  assert.deepEqual(await list(join(f.mail, 'trash', '.Trash', 'cur')), [all[1]]);
  assert.equal(
    await readFile(join(f.mail, 'trash', '.Trash', 'cur', all[1] as string), 'utf8'),
    `Subject: ${BASES[1]}\r\n\r\nbody of ${BASES[1]}\r\n`,
  );
  // keep-days:30: still in cur/ until its time is past; written 31 days old, the next login sweeps it.
  assert.deepEqual(await cur('keep'), all);
  const state = await readFile(join(f.mail, 'keep', POLICY_STATE_FILE), 'utf8');
  assert.match(state, new RegExp(`^poplar-policy 1\nK [0-9]+ 30 ${BASES[1]?.replaceAll('.', '\\.')}\n$`));
  const old = Date.now() - 31 * DAY_S * 1000;
  await writeFile(join(f.mail, 'keep', POLICY_STATE_FILE), `poplar-policy 1\nK ${old} 30 ${BASES[1]}\n`);
  assert.deepEqual((await session(f, 'keep', {}))['uidl'], [BASES[0], BASES[2]]);
  assert.deepEqual(await cur('keep'), [all[0], all[2]]);
  assert.deepEqual(await list(join(f.mail, 'keep')).then((n) => n.includes(POLICY_STATE_FILE)), false);
});

test("Thunderbird's keep-at-most-N-days (reproduced with poplib) with poplar_delete=keep-days:14", async (t) => {
  const f = await setUp(t);
  if (f === undefined) return;
  const popstate = join(f.cwd, 'popstate.json');
  const tb = (days: number) => run(f, THUNDERBIRD, ['tb', 'pw-tb', popstate, String(days)]);
  // First check: everything is new, downloaded, nothing deleted.
  assert.deepEqual(await tb(7), {
    fetched: BASES,
    deleted: [],
    quit: '+OK Poplar signing off (3 messages left)',
  });
  // Eight days on for the first two (the client's own record, written back in time).
  const seen = JSON.parse(await readFile(popstate, 'utf8')) as Record<string, number>;
  for (const uid of BASES.slice(0, 2)) seen[uid] = (seen[uid] ?? 0) - 8 * DAY_S;
  await writeFile(popstate, JSON.stringify(seen));
  assert.deepEqual(await tb(7), {
    fetched: [],
    deleted: BASES.slice(0, 2),
    quit: '+OK Poplar signing off (1 message left)',
  });
  // The server keeps them 14 days more, hidden from POP3.
  const cur = join(f.mail, 'tb', 'cur');
  assert.equal((await list(cur)).length, 3);
  assert.deepEqual(await tb(7), {
    fetched: [],
    deleted: [],
    quit: '+OK Poplar signing off (1 message left)',
  });
  // 15 days after the deletion, the sweep at the next login removes them.
  const state = await readFile(join(f.mail, 'tb', POLICY_STATE_FILE), 'utf8');
  const old = Date.now() - 15 * DAY_S * 1000;
  await writeFile(join(f.mail, 'tb', POLICY_STATE_FILE), state.replace(/^K [0-9]+ /gm, `K ${old} `));
  await tb(7);
  assert.deepEqual(await list(cur), [`${BASES[2]}:2,S`]);
});

test('EXPIRE 5 with move:Trash: retrieved mail goes to the Trash at the first login 5 days later', async (t) => {
  const f = await setUp(t);
  if (f === undefined) return;
  assert.match((await session(f, 'expire', { retr: [BASES[0] as string] }))['quit'] as string, /^\+OK/);
  const path = join(f.mail, 'expire', POLICY_STATE_FILE);
  const state = await readFile(path, 'utf8');
  assert.match(state, new RegExp(`^poplar-policy 1\nR [0-9]+ ${BASES[0]?.replaceAll('.', '\\.')}\n$`));
  assert.deepEqual((await session(f, 'expire', {}))['uidl'], BASES);
  await writeFile(path, `poplar-policy 1\nR ${Date.now() - 6 * DAY_S * 1000} ${BASES[0]}\n`);
  assert.deepEqual((await session(f, 'expire', {}))['uidl'], [BASES[1], BASES[2]]);
  assert.deepEqual(await list(join(f.mail, 'expire', '.Trash', 'cur')), [`${BASES[0]}:2,S`]);
});
