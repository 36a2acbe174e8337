// What the fuzzer runs against, shared by the short mode (fuzz.test.ts) and the long mode
// (scripts/fuzz.mjs): the folder a daemon is started in, and the health check made afterwards.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { sendMonitorRequest } from '../../src/monitor/client.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import type { FuzzCredentials } from './fuzz-engine.js';

/** The token of the target's only admin, `ops`. The fuzzer uses it for GETs and refused CONFIGs only. */
export const FUZZ_ADMIN_TOKEN = 'Fz7-monitor.TOK9';
/** alice is the health check's user: the fuzzer knows her name, never her password. */
export const ALICE_PASSWORD = 'alice-Health-8317';
export const ALICE_MESSAGES = [
  'From: a@example.org\r\nSubject: one\r\n\r\nfirst\r\n',
  'Subject: two\r\n\r\n.leading dot\r\nsecond\r\n',
] as const;
/** The fuzzer logs in as these, to reach the TRANSACTION state. */
export const FUZZ_USERS: readonly FuzzCredentials[] = [
  { user: 'fuzz1', password: 'fuzz-pw-1' },
  { user: 'fuzz2', password: 'fuzz pw 2' },
  { user: 'fuzz3', password: 'fuzz:pw:3' },
];
export const FUZZ_MESSAGES: readonly string[] = [
  'Subject: a\r\n\r\nbody\r\n',
  'Subject: lone LF\n\n.dot\n..two dots\nno final line end',
  `Subject: big\r\n\r\n${'0123456789abcdef'.repeat(8192)}\r\n`,
  'Subject: dots\r\n\r\n.\r\n..\r\n.\r\n',
  '',
];

/** The daemon's arguments for a temporary folder holding poplar.toml, users, admins and mail/. */
export const DAEMON_ARGS: readonly string[] = [
  '--config',
  'poplar.toml',
  '--users',
  'users',
  '--admins',
  'admins',
  '-m',
  'mail',
  '--listen',
  '127.0.0.1',
  '-p',
  '0',
];

/**
 * Error entries the fuzzer provokes through bugs found and reported but not fixed yet, in files
 * outside this test's reach. They are counted and shown rather than failed on: delete an entry
 * once its bug is fixed, and the fuzzer guards the fix.
 */
export const KNOWN_ISSUES: readonly {
  readonly name: string;
  readonly matches: (entry: { readonly [field: string]: unknown }) => boolean;
}[] = [];

/**
 * The entries at level 50 or above, split into known issues (counted by name) and the rest. The
 * `command` entry that ends with result `internal` on the same connection as a known issue is
 * part of it.
 */
export function classifyErrors(entries: readonly { readonly [field: string]: unknown }[]): {
  readonly unexpected: { readonly [field: string]: unknown }[];
  readonly known: Map<string, number>;
} {
  const errors = entries.filter((e) => typeof e['level'] === 'number' && e['level'] >= 50);
  const known = new Map<string, number>();
  const issueOfConnection = new Map<unknown, string>();
  const rest: { readonly [field: string]: unknown }[] = [];
  for (const entry of errors) {
    const issue = KNOWN_ISSUES.find((k) => k.matches(entry));
    if (issue === undefined) {
      rest.push(entry);
      continue;
    }
    known.set(issue.name, (known.get(issue.name) ?? 0) + 1);
    if (entry['cid'] !== undefined) issueOfConnection.set(entry['cid'], issue.name);
  }
  const unexpected = rest.filter(
    (e) => !(e['msg'] === 'command' && e['result'] === 'internal' && issueOfConnection.has(e['cid'])),
  );
  return { unexpected, known };
}

export interface FuzzTarget {
  /** The daemon's working directory. */
  readonly cwd: string;
  readonly root: string;
  /** A folder outside the mail root that nothing may touch. */
  readonly canary: string;
  readonly usersFile: string;
  readonly adminsFile: string;
  /** Daemon arguments, relative to `cwd`, without ports other than `-p 0`. */
  readonly args: readonly string[];
  readonly hasTls: boolean;
}

/** What the health check compares with: taken before fuzzing. */
export interface FuzzBaseline {
  readonly rootEntries: readonly string[];
  readonly alice: ReadonlyMap<string, string>;
  readonly canary: ReadonlyMap<string, string>;
  readonly users: string;
  readonly admins: string;
}

/**
 * Every entry under `dir` (symbolic links not followed): its kind, mode, and a digest of a file's
 * content or a link's target. Equal snapshots mean nothing was created, changed, renamed or
 * deleted there.
 */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    const path = join(dir, relative);
    const info = await lstat(path);
    const mode = (info.mode & 0o7777).toString(8);
    if (info.isSymbolicLink()) {
      out.set(relative, `link ${await readlink(path)}`);
    } else if (info.isDirectory()) {
      out.set(relative, `dir ${mode}`);
      for (const name of (await readdir(path)).sort()) await walk(join(relative, name));
    } else if (info.isFile()) {
      const digest = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
      out.set(relative, `file ${mode} ${digest}`);
    } else {
      out.set(relative, `other ${mode}`);
    }
  };
  await walk('.');
  return out;
}

/**
 * Fills `cwd` (an empty folder): mail root `mail/` with alice's and the fuzz users' maildirs, a
 * users file (every user `{PLAIN}`, so that APOP and CRAM-MD5 are offered too), an admins file,
 * `poplar.toml` (limits below), a canary folder,
 * and a self-signed certificate when `openssl` can make one (`makeCertificate`).
 */
export async function prepareFuzzTarget(
  cwd: string,
  makeCertificate: (dir: string) => Promise<unknown>,
): Promise<FuzzTarget> {
  const root = join(cwd, 'mail');
  const canary = join(cwd, 'canary');
  await mkdir(canary);
  await writeFile(join(canary, 'secret.txt'), 'outside the mail root\n');
  const users = [
    `alice:{PLAIN}${ALICE_PASSWORD}`,
    ...FUZZ_USERS.map((u) => `${u.user}:{PLAIN}${u.password}`),
  ];
  const usersFile = join(cwd, 'users');
  const adminsFile = join(cwd, 'admins');
  await writeFile(usersFile, `${users.join('\n')}\n`, { mode: 0o600 });
  await writeFile(adminsFile, `ops:${await hashPassword(FUZZ_ADMIN_TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  // Failed logins answered at once and 200 connections per address: the fuzzer runs from one
  // address. A login timeout of 5 s bounds how long a connection the fuzzer dropped can be kept
  // (a client that sends STLS and closes is kept until then: see security.test.ts).
  await writeFile(
    join(cwd, 'poplar.toml'),
    '[limits]\nauthFailureDelayMs = 0\nmaxConnectionsPerIp = 200\nloginTimeoutMs = 5000\n',
  );
  await buildMaildir(
    root,
    'alice',
    ALICE_MESSAGES.map((content) => ({ content })),
  );
  for (const u of FUZZ_USERS) {
    await buildMaildir(
      root,
      u.user,
      FUZZ_MESSAGES.map((content) => ({ content })),
    );
  }
  const hasTls = (await makeCertificate(cwd)) !== undefined;
  const args = [...DAEMON_ARGS, ...(hasTls ? ['--tls-cert', 'cert.pem', '--tls-key', 'key.pem'] : [])];
  return { cwd, root, canary, usersFile, adminsFile, args, hasTls };
}

export async function baseline(target: FuzzTarget): Promise<FuzzBaseline> {
  return {
    rootEntries: (await readdir(target.root)).sort(),
    alice: await snapshot(join(target.root, 'alice')),
    canary: await snapshot(target.canary),
    users: await readFile(target.usersFile, 'utf8'),
    admins: await readFile(target.adminsFile, 'utf8'),
  };
}

/**
 * No mail lost or changed: alice's maildir is exactly as it was (the fuzzer never logs in as
 * her), each fuzz user's remaining file holds one of the original messages, nothing new in the
 * mail root, the canary, users and admins files untouched. Call it once the daemon has closed
 * every fuzzed connection.
 */
export async function assertMailIntact(
  target: FuzzTarget,
  before: FuzzBaseline,
  context: string,
): Promise<void> {
  assert.deepEqual(await snapshot(join(target.root, 'alice')), before.alice, `alice's maildir (${context})`);
  assert.deepEqual((await readdir(target.root)).sort(), before.rootEntries, `mail root entries (${context})`);
  const originals = new Set(FUZZ_MESSAGES);
  for (const u of FUZZ_USERS) {
    const dir = join(target.root, u.user);
    assert.deepEqual(await readdir(join(dir, 'tmp')), [], `${u.user}/tmp (${context})`);
    for (const folder of ['new', 'cur']) {
      for (const name of await readdir(join(dir, folder))) {
        const content = await readFile(join(dir, folder, name), 'utf8');
        assert.ok(
          originals.has(content),
          `${u.user}/${folder}/${name} holds an original message (${context})`,
        );
      }
    }
  }
  assert.deepEqual(await snapshot(target.canary), before.canary, `canary (${context})`);
  assert.equal(await readFile(target.usersFile, 'utf8'), before.users, `users file (${context})`);
  assert.equal(await readFile(target.adminsFile, 'utf8'), before.admins, `admins file (${context})`);
}

/**
 * A whole session as alice (greeting, USER, PASS, STAT, LIST, RETR 2, RETR 1, QUIT), compared
 * byte for byte; resolves to the transcript.
 */
export async function assertFullSession(port: number): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  let received = '';
  let isClosed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    wake?.();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    isClosed = true;
    wake?.();
  });
  /** Waits until `done()` holds; throws after 15 s or, unless `done` is about the close, at a close. */
  const waitUntil = async (done: () => boolean, what: string): Promise<void> => {
    const until = Date.now() + 15_000;
    while (!done()) {
      if (isClosed || Date.now() > until) {
        throw new Error(`expected ${what}, got ${JSON.stringify(received)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, until - Date.now());
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const waitFor = (expected: string): Promise<void> =>
    waitUntil(() => received.includes(expected), JSON.stringify(expected));
  try {
    await waitFor('\r\n');
    const greeting = received;
    assert.match(greeting, /^\+OK Poplar POP3 server ready <[^<>\r\n]+>\r\n$/);
    const [one, two] = ALICE_MESSAGES;
    const total = one.length + two.length;
    const dialog: [string, string][] = [
      ['USER alice\r\n', '+OK send PASS\r\n'],
      [`PASS ${ALICE_PASSWORD}\r\n`, `+OK alice has 2 messages (${total} octets)\r\n`],
      ['STAT\r\n', `+OK 2 ${total}\r\n`],
      ['LIST\r\n', `+OK 2 messages (${total} octets)\r\n1 ${one.length}\r\n2 ${two.length}\r\n.\r\n`],
      ['RETR 2\r\n', `+OK ${two.length} octets\r\n${two.replace('\n.', '\n..')}.\r\n`],
      ['RETR 1\r\n', `+OK ${one.length} octets\r\n${one}.\r\n`],
      ['QUIT\r\n', '+OK Poplar signing off (2 messages left)\r\n'],
    ];
    let expected = greeting;
    for (const [command, reply] of dialog) {
      socket.write(command);
      expected += reply;
      await waitFor(expected);
    }
    await waitUntil(() => isClosed, 'the server to close the connection');
    assert.equal(received, expected, 'the exact bytes of the session');
    return received;
  } finally {
    socket.destroy();
  }
}

/**
 * GET 0x00 (historic connections) with the admin token: status ok, 4 bytes, at least 1. Sent from
 * 127.0.0.2: the fuzzer's wrong tokens lock its own address (127.0.0.1) out for a while.
 */
export async function assertMonitorAnswers(port: number): Promise<number> {
  const response = await sendMonitorRequest(
    { host: '127.0.0.1', port, timeoutMs: 15_000, localAddress: '127.0.0.2' },
    {
      type: 'get',
      target: 'historicConnections',
      token: Buffer.from(FUZZ_ADMIN_TOKEN),
      data: Buffer.alloc(0),
    },
  );
  assert.equal(response.status, 'ok');
  assert.equal(response.data.length, 4);
  const value = response.data.readUInt32BE(0);
  assert.ok(value >= 1);
  return value;
}
