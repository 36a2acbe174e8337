import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import fc from 'fast-check';
import { Pop3TestClient } from '../../helpers/pop3-client.js';
import { startServer } from '../../helpers/start-server.js';
import { COMMANDS } from '../../../src/pop3/commands/index.js';
import type { Pop3Server } from '../../../src/pop3/server.js';

// Hostile input (issue 6), end to end: a real server on a loopback port gets arbitrary command
// lines (random bytes, real verbs in random case with random arguments, overlong lines). Each line
// gets exactly one reply, +OK or -ERR, multi-line replies properly terminated; or the server ends
// the connection right after a final -ERR (or QUIT's reply), at the latest when the lines that are
// certainly protocol errors reach maxProtocolErrors. Afterwards a new client can log in and STAT.

const VERBS = [...COMMANDS.keys()];
const CRLF = Buffer.from('\r\n');

/** Messages with dot lines, bare LFs, 8-bit bytes, no final line end, and an empty one. */
const MAILBOXES = {
  alice: [
    'Subject: one\r\n\r\nHello\r\n.\r\n..\r\n.x\r\n',
    'Subject: two\n\nbare LF\n.\nno final line end',
    Buffer.from([0x53, 0x3a, 0x20, 0xff, 0x0a, 0x0a, 0x2e, 0x00, 0x0d, 0x0a]),
    '',
    `Subject: long\r\n\r\n${'x'.repeat(3000)}\r\n`,
  ],
  bob: [],
};

// What dispatch.ts refuses before looking at any state: kept as plain as the rule in
// docs/architecture.md ("UTF-8, no control characters, the verb letters only").
const utf8 = new TextDecoder('utf-8', { fatal: true });
const VERB = /^[A-Za-z][A-Za-z0-9]{0,7}$/;
const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/\d/;

/** Whether the line is a protocol error in any state (overlong, not UTF-8, control bytes, no such verb). */
function isCertainProtocolError(line: Buffer, maxCommandBytes: number): boolean {
  if (line.length > maxCommandBytes) return true;
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return true;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) return true;
  const word = text.split(' ', 1)[0] ?? '';
  if (!VERB.test(word)) return true;
  if (COMMANDS.has(word.toUpperCase())) return false;
  // An HTTP request line is answered and closed at once: not counted, and not waited for either.
  return !HTTP_REQUEST.test(text);
}

/** The verb as the server would see it, upper case; '' when the line has none. */
function verbOf(line: Buffer): string {
  const word = line.toString('latin1').split(' ', 1)[0] ?? '';
  return VERB.test(word) ? word.toUpperCase() : '';
}

const withoutLF = (bytes: Uint8Array): Buffer => Buffer.from(bytes.filter((b) => b !== 0x0a));

/** The (ASCII) verb with each letter upper or lower case as `upper` says. */
const withCase = (verb: string, upper: readonly boolean[]): string =>
  verb.replace(/[A-Za-z]/g, (c: string, i: number) =>
    upper[i] === true ? c.toUpperCase() : c.toLowerCase(),
  );

const caseArb = fc.array(fc.boolean(), { minLength: 8, maxLength: 8 });

const randomCase = fc.tuple(fc.constantFrom(...VERBS), caseArb).map(([verb, upper]) => withCase(verb, upper));

const argument = fc.oneof(
  fc.constantFrom(
    'alice',
    'bob',
    'pw',
    'secret',
    'nobody',
    '1',
    '2',
    '3',
    '5',
    '6',
    '0',
    '-1',
    '+1',
    '01',
    '1.0',
    '1e3',
    '99999999999999999999',
    '4294967297',
    'PLAIN',
    'plain',
    'LOGIN',
    'CRAM-MD5',
    'SCRAM-SHA-256',
    'XOAUTH2',
    'NOPE',
    '=',
    '*',
    Buffer.from('\0alice\0pw').toString('base64'),
    Buffer.from('\0alice\0wrong').toString('base64'),
    'AGFsaWNl',
    'not base64!',
    '0123456789abcdef0123456789abcdef',
    '.',
    '..',
    '../etc/passwd',
    '%s%n',
    'é',
    '😀',
  ),
  fc.nat().map(String),
  fc.integer({ min: -3, max: 12 }).map(String),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

/** A verb of the real command set, in random case, with random arguments. */
const commandLine = fc
  .tuple(
    randomCase,
    fc.constantFrom(' ', ' ', '  ', '\t', ''),
    fc.array(argument, { maxLength: 3 }),
    fc.constantFrom('', ' ', '\r'),
  )
  .map(([verb, sep, args, tail]) =>
    withoutLF(Buffer.from(`${verb}${args.length > 0 ? sep : ''}${args.join(' ')}${tail}`)),
  );

/** Lines around and far over the command limit. */
const overlongLine = (maxCommandBytes: number): fc.Arbitrary<Buffer> =>
  fc
    .tuple(
      fc.oneof(randomCase, fc.constant('')),
      fc.oneof(
        fc.integer({ min: maxCommandBytes - 8, max: maxCommandBytes + 8 }),
        fc.integer({ min: 0, max: 20_000 }),
      ),
      fc.constantFrom('A', ' ', '.', '\r', '\0', 'é'),
    )
    .map(([verb, length, unit]) => {
      const line = Buffer.from(`${verb} ${unit.repeat(length)}`);
      return withoutLF(line.subarray(0, Math.max(0, Math.min(line.length, length))));
    });

/** Well-formed commands with plausible message numbers, so that the +OK paths are walked too. */
const wellFormedLine = fc
  .tuple(
    fc.constantFrom(
      'STAT',
      'LIST',
      'UIDL',
      'NOOP',
      'RSET',
      'CAPA',
      'AUTH',
      'LIST n',
      'UIDL n',
      'RETR n',
      'DELE n',
      'TOP n m',
      'USER alice',
      'PASS pw',
      'AUTH PLAIN',
      'AUTH LOGIN',
      'AUTH CRAM-MD5',
      'AUTH SCRAM-SHA-256',
    ),
    fc.integer({ min: 0, max: 7 }),
    fc.integer({ min: 0, max: 3 }),
    caseArb,
  )
  .map(([form, n, m, upper]) => {
    const [verb = '', ...rest] = form.replace('n', String(n)).replace('m', String(m)).split(' ');
    return Buffer.from([withCase(verb, upper), ...rest].join(' '));
  });

const hostileLine = (maxCommandBytes: number): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { weight: 6, arbitrary: wellFormedLine },
    { weight: 5, arbitrary: commandLine },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 60 }).map(withoutLF) },
    {
      weight: 1,
      arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => withoutLF(Buffer.from(s))),
    },
    { weight: 1, arbitrary: overlongLine(maxCommandBytes) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          'USER alice',
          'PASS pw',
          'AUTH PLAIN',
          `AUTH PLAIN ${Buffer.from('\0alice\0pw').toString('base64')}`,
          'GET / HTTP/1.1',
          'STLS',
          'QUIT',
          '',
          ' ',
          '\r',
        )
        .map((s) => Buffer.from(s)),
    },
  );

const sessionArb = fc
  .record({
    maxCommandBytes: fc.constantFrom(255, 1024),
    maxProtocolErrors: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 4, max: 12 })),
    isLoggedInFirst: fc.boolean(),
  })
  .chain((limits) =>
    fc.record({
      limits: fc.constant(limits),
      lines: fc.array(hostileLine(limits.maxCommandBytes), { minLength: 1, maxLength: 16 }),
    }),
  );

/** Resolves once the server has no connection left (its close event has run for each). */
async function idle(server: Pop3Server): Promise<void> {
  while (server.connectionCount > 0) await once(server, 'close');
}

/** Reads a status line, or undefined when the connection ended first. */
async function readStatus(client: Pop3TestClient): Promise<string | undefined> {
  try {
    return await client.readLine();
  } catch {
    return undefined;
  }
}

const show = (line: Buffer): string => JSON.stringify(line.toString('latin1').slice(0, 80));

interface SessionLimits {
  readonly maxCommandBytes: number;
  readonly maxProtocolErrors: number;
  readonly isLoggedInFirst: boolean;
}

/** Sends the lines one by one and checks each reply; returns when done or when the server closed. */
async function runSession(port: number, limits: SessionLimits, lines: readonly Buffer[]): Promise<void> {
  const client = await Pop3TestClient.connect(port);
  try {
    assert.match(client.greeting, /^\+OK/);
    // CAPA is valid in both states and never counted as an error: it follows every line, and its
    // status line marks where the reply to that line ended.
    const sentinel = await client.command('CAPA');
    assert.match(sentinel, /^\+OK/);
    await client.readLines();
    if (limits.isLoggedInFirst) await client.login('alice', 'pw');
    let certainErrors = 0;
    for (const line of lines) {
      client.write(Buffer.concat([line, CRLF]));
      let status = await readStatus(client);
      assert.ok(status !== undefined, `no reply to ${show(line)}`);
      if (status === '+' || status.startsWith('+ ')) {
        // A SASL challenge: only AUTH asks for more. Cancel; the cancel is answered -ERR.
        assert.equal(verbOf(line), 'AUTH', `a challenge after ${show(line)}`);
        client.send('*');
        status = await readStatus(client);
        assert.ok(status?.startsWith('-ERR') === true, `cancelled AUTH answered ${String(status)}`);
      }
      assert.match(status, /^(?:\+OK|-ERR)(?: |$)/, `reply to ${show(line)}`);
      if (isCertainProtocolError(line, limits.maxCommandBytes)) certainErrors += 1;

      client.send('CAPA');
      const extra: string[] = [];
      let isClosed = false;
      for (;;) {
        const next = await readStatus(client);
        if (next === undefined) {
          isClosed = true;
          break;
        }
        if (next === sentinel) break;
        extra.push(next);
      }
      if (isClosed) {
        assert.ok(
          status.startsWith('-ERR') || verbOf(line) === 'QUIT',
          `closed after ${JSON.stringify(status)} to ${show(line)}`,
        );
        assert.deepEqual(extra, [], 'nothing after the final reply');
        return;
      }
      assert.ok(
        certainErrors < limits.maxProtocolErrors,
        `still open after ${certainErrors} certain protocol errors (limit ${limits.maxProtocolErrors})`,
      );
      if (extra.length > 0) {
        // The rest of a multi-line reply: dot-stuffed lines, then the terminator, nothing more.
        assert.ok(status.startsWith('+OK'), `a multi-line -ERR to ${show(line)}: ${JSON.stringify(extra)}`);
        assert.equal(extra[extra.length - 1], '.', `terminated reply to ${show(line)}`);
        for (const body of extra.slice(0, -1)) {
          if (body.startsWith('.')) assert.ok(body.startsWith('..'), `stuffed line ${JSON.stringify(body)}`);
        }
      }
      await client.readLines(); // the sentinel's own capability list
    }
  } finally {
    client.close();
  }
}

/** A new client logs in and gets STAT, as if nothing had happened. */
async function assertServesNewClient(port: number): Promise<void> {
  const client = await Pop3TestClient.connect(port);
  try {
    assert.match(client.greeting, /^\+OK/);
    await client.login('alice', 'pw');
    assert.match(await client.command('STAT'), /^\+OK \d+ \d+$/);
    assert.match(await client.command('QUIT'), /^\+OK/);
  } finally {
    client.close();
  }
}

// A server that stops answering would otherwise hold the test until the runner gives up.
const TEST_TIMEOUT_MS = 60_000;

test(
  'any command lines: one +OK/-ERR reply each, or a close after a final -ERR; then a new client logs in',
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await fc.assert(
      fc.asyncProperty(sessionArb, async ({ limits, lines }) => {
        const { server, port } = await startServer(t, {
          mailboxes: MAILBOXES,
          limits: { maxCommandBytes: limits.maxCommandBytes, maxProtocolErrors: limits.maxProtocolErrors },
        });
        try {
          await runSession(port, limits, lines);
          // The session's maildrop lock is released once the server has seen the connection go.
          await idle(server);
          await assertServesNewClient(port);
          await idle(server);
        } finally {
          await server.close({ graceMs: 0 });
        }
      }),
      { numRuns: 150 },
    );
  },
);
