import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  linesOf,
  startInteropServer,
  topOf,
  type InteropServer,
  type InteropServerOptions,
} from './fixtures.js';
import { requireBinary } from './require-binary.js';
import { clientEnv, describeRun, runClient } from './run-client.js';

/**
 * Python's standard poplib. A small driver script runs a list of steps (method name and
 * arguments) on one `poplib.POP3` connection and prints a JSON array with one result per step.
 * Bytes travel as latin1 strings (code points 0-255, one per byte), so nothing is lost. A
 * `poplib.error_proto` is reported as `{ error, message }` and the next step runs; any other
 * exception ends the script.
 *
 * poplib strips each line's CRLF and removes the byte-stuffing (`..` becomes `.`); the `octets` it
 * returns are the un-stuffed octets with CRLF, so they equal the LIST size.
 */
const DRIVER = String.raw`
import hashlib, json, poplib, sys

spec = json.loads(sys.argv[1])

def plain(x):
    if isinstance(x, bytes):
        return x.decode('latin1')
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {plain(k): plain(v) for k, v in x.items()}
    return x

results = []
pop = poplib.POP3(spec['host'], spec['port'], timeout=20)
results.append(plain(pop.getwelcome()))
try:
    for step in spec['steps']:
        try:
            value = getattr(pop, step['op'])(*step.get('args', []))
        except poplib.error_proto as e:
            results.append({'error': 'error_proto', 'message': plain(e.args[0])})
            continue
        if step.get('hash'):
            resp, lines, octets = value
            digest = hashlib.sha256()
            for line in lines:
                digest.update(line)
                digest.update(b'\r\n')
            value = {'resp': resp, 'count': len(lines), 'octets': octets, 'sha256': digest.hexdigest()}
        results.append(plain(value))
finally:
    print(json.dumps(results))
    pop.close()
`;

interface Step {
  readonly op: string;
  readonly args?: readonly (string | number)[];
  /** For retr/top: report the SHA-256 of the lines (each with CRLF) instead of the lines. */
  readonly hash?: boolean;
}

/** [resp, lines, octets] as poplib returns them for retr, top, list and uidl. */
type LongReply = [string, string[], number];
interface ProtoError {
  error: 'error_proto';
  message: string;
}

async function setUp(
  t: TestContext,
  options: InteropServerOptions = {},
): Promise<{ python: string; srv: InteropServer; script: string } | undefined> {
  const python = await requireBinary(t, 'python3');
  if (python === undefined) return undefined;
  const srv = await startInteropServer(t, options);
  const script = join(srv.work, 'poplib_driver.py');
  await writeFile(script, DRIVER);
  return { python, srv, script };
}

/** Runs the steps on one connection; returns the greeting and one result per step. */
async function poplib(
  set: { python: string; srv: InteropServer; script: string },
  steps: readonly Step[],
): Promise<[string, ...unknown[]]> {
  const spec = JSON.stringify({ host: '127.0.0.1', port: set.srv.port, steps });
  const result = await runClient(set.python, ['-I', '-B', set.script, spec], {
    env: clientEnv(set.srv.work),
  });
  assert.equal(result.code, 0, describeRun('python3 poplib driver', result));
  return JSON.parse(result.stdout.toString('utf8')) as [string, ...unknown[]];
}

const login = (srv: InteropServer): Step[] => [
  { op: 'user', args: [srv.user] },
  { op: 'pass_', args: [srv.password] },
];

/** latin1 strings (as the driver prints bytes) of the expected lines. */
const latin1Lines = (lines: readonly Buffer[]): string[] => lines.map((l) => l.toString('latin1'));

test('poplib capa() parses the capability list', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const [, capa] = await poplib(set, [{ op: 'capa' }]);
  const caps = capa as Record<string, string[]>;
  for (const name of ['TOP', 'UIDL', 'USER', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING']) {
    assert.deepEqual(caps[name], [], `CAPA ${name}`);
  }
  assert.deepEqual(caps['IMPLEMENTATION'], ['Poplar']);
});

test('poplib user/pass_, stat, list, uidl and noop', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const [welcome, user, pass, stat, list, uidl, noop, quit] = await poplib(set, [
    ...login(srv),
    { op: 'stat' },
    { op: 'list' },
    { op: 'uidl' },
    { op: 'noop' },
    { op: 'quit' },
  ]);
  assert.match(welcome, /^\+OK .*<[^<>]+@poplar\.test>$/);
  assert.match(user as string, /^\+OK/);
  assert.match(pass as string, /^\+OK/);
  const sizes = srv.fixtures.map((f) => f.expected.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.deepEqual(stat, [sizes.length, total]);
  const [listResp, listLines] = list as LongReply;
  assert.match(listResp, /^\+OK/);
  assert.deepEqual(
    listLines,
    sizes.map((size, i) => `${i + 1} ${size}`),
  );
  const [uidlResp, uidlLines] = uidl as LongReply;
  assert.match(uidlResp, /^\+OK/);
  assert.deepEqual(
    uidlLines,
    srv.fixtures.map((f, i) => `${i + 1} ${f.uid}`),
  );
  assert.match(noop as string, /^\+OK/);
  assert.match(quit as string, /^\+OK/);
});

test('poplib apop() logs in with the greeting timestamp', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const [, apop, stat] = await poplib(set, [{ op: 'apop', args: [srv.user, srv.password] }, { op: 'stat' }]);
  assert.match(apop as string, /^\+OK/);
  assert.equal((stat as number[])[0], srv.fixtures.length);
});

test('poplib retr() of every fixture returns the expected lines and octets', async (t) => {
  const set = await setUp(t, { big: true });
  if (set === undefined) return;
  const { srv } = set;
  const big = srv.big;
  assert.ok(big !== undefined);
  const results = await poplib(set, [
    ...login(srv),
    ...srv.fixtures.map((_, i) => ({ op: 'retr', args: [i + 1] })),
    { op: 'retr', args: [srv.fixtures.length + 1], hash: true },
    { op: 'quit' },
  ]);
  const retrs = results.slice(3);
  for (const [i, fixture] of srv.fixtures.entries()) {
    const [resp, lines, octets] = retrs[i] as LongReply;
    assert.equal(resp, `+OK ${fixture.expected.length} octets`, fixture.name);
    assert.deepEqual(lines, latin1Lines(linesOf(fixture.expected)), fixture.name);
    assert.equal(octets, fixture.expected.length, fixture.name);
  }
  const bigResult = retrs[srv.fixtures.length] as { count: number; octets: number; sha256: string };
  assert.equal(bigResult.count, big.lineCount);
  assert.equal(bigResult.octets, big.size);
  assert.equal(bigResult.sha256, big.sha256);
});

test('poplib top(n, 0) and top(n, 2) of every fixture', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const steps = srv.fixtures.flatMap((_, i) => [
    { op: 'top', args: [i + 1, 0] },
    { op: 'top', args: [i + 1, 2] },
  ]);
  const results = (await poplib(set, [...login(srv), ...steps, { op: 'quit' }])).slice(3);
  for (const [i, fixture] of srv.fixtures.entries()) {
    const [, top0] = results[2 * i] as LongReply;
    const [, top2] = results[2 * i + 1] as LongReply;
    assert.deepEqual(top0, latin1Lines(topOf(fixture.expected, 0)), `${fixture.name} TOP 0`);
    assert.deepEqual(top2, latin1Lines(topOf(fixture.expected, 2)), `${fixture.name} TOP 2`);
  }
});

test('poplib dele() then rset() keeps every message', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const closed = srv.nextClose();
  const [, , , dele, rset, stat, quit] = await poplib(set, [
    ...login(srv),
    { op: 'dele', args: [1] },
    { op: 'rset' },
    { op: 'stat' },
    { op: 'quit' },
  ]);
  assert.match(dele as string, /^\+OK/);
  assert.match(rset as string, /^\+OK/);
  assert.equal((stat as number[])[0], srv.fixtures.length);
  assert.match(quit as string, /^\+OK/);
  assert.equal((await closed).summary.deletedMessages, 0);
  assert.equal((await srv.messageFiles()).length, srv.fixtures.length);
});

test('poplib dele() then quit() removes the files from the maildir', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const closed = srv.nextClose();
  const [, , , dele1, dele3, again, quit] = await poplib(set, [
    ...login(srv),
    { op: 'dele', args: [1] },
    { op: 'dele', args: [3] },
    { op: 'dele', args: [3] },
    { op: 'quit' },
  ]);
  assert.match(dele1 as string, /^\+OK/);
  assert.match(dele3 as string, /^\+OK/);
  assert.equal((again as ProtoError).error, 'error_proto');
  assert.match((again as ProtoError).message, /^-ERR /);
  assert.match(quit as string, /^\+OK/);
  assert.equal((await closed).summary.deletedMessages, 2);
  const left = (await srv.messageFiles()).map((f) => (f.split('/')[1] ?? '').split(':')[0]);
  assert.deepEqual(
    left,
    srv.fixtures.filter((_, i) => i !== 0 && i !== 2).map((f) => f.uid),
  );
});

test('poplib with a wrong password raises error_proto carrying [AUTH]', async (t) => {
  const set = await setUp(t);
  if (set === undefined) return;
  const { srv } = set;
  const [, user, pass, apop] = await poplib(set, [
    { op: 'user', args: [srv.user] },
    { op: 'pass_', args: ['wrong-password'] },
    { op: 'apop', args: [srv.user, 'wrong-password'] },
  ]);
  assert.match(user as string, /^\+OK/);
  assert.equal((pass as ProtoError).error, 'error_proto');
  assert.match((pass as ProtoError).message, /^-ERR \[AUTH\] /);
  assert.equal((apop as ProtoError).error, 'error_proto');
  assert.match((apop as ProtoError).message, /^-ERR \[AUTH\] /);
});
