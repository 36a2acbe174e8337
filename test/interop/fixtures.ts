import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { StaticAuthenticator } from '../../src/auth/static.js';
import type { Authenticator } from '../../src/auth/types.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import type { ClosedSessionInfo } from '../../src/pop3/connection.js';
import { createServer, type Pop3Server } from '../../src/pop3/server.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The messages every interop test serves, and what a POP3 client must receive for each.
 *
 * The expected bytes are worked out here, independently of the server's own code (no
 * DotStuffing, no MessageMeter): every line end becomes CRLF and a message that does not end with
 * a line end gets a final CRLF (RFC 1939 section 3, and Poplar's documented handling of bare-LF
 * maildirs). Byte-stuffing is the clients' business: they un-stuff what they receive.
 */
export interface Fixture {
  /** Short name, used in test names. */
  readonly name: string;
  /** The UIDL the server must report: the file's Maildir base name. */
  readonly uid: string;
  /** What a client receives: the RETR body without stuffing and without the final `.` line. */
  readonly expected: Buffer;
}

/** The big message is never held in memory: only its size and digest are kept. */
export interface BigFixture {
  readonly name: string;
  readonly uid: string;
  /** Octets a client receives (the LIST size). */
  readonly size: number;
  /** Hex SHA-256 of the bytes a client receives. */
  readonly sha256: string;
  /** Hex SHA-256 of the same bytes with LF line ends, as fetchmail and mpop store a message. */
  readonly sha256Lf: string;
  /** Lines in the message, header included. */
  readonly lineCount: number;
}

export const USER = 'alice';
export const PASSWORD = 'interop-Secret1';

/** CRLF line ends for every line end, a final CRLF when missing. Byte-exact (latin1 maps bytes 1:1). */
export function normalise(raw: Uint8Array): Buffer {
  let text = Buffer.from(raw).toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}

/** The lines of `expected` as a line-oriented client (poplib) returns them: CRLF removed, no final empty line. */
export function linesOf(expected: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = expected.indexOf('\r\n', start); nl !== -1; nl = expected.indexOf('\r\n', start)) {
    lines.push(expected.subarray(start, nl));
    start = nl + 2;
  }
  return lines;
}

/** What `TOP n bodyLines` returns: the header, the blank line and the first `bodyLines` body lines. */
export function topOf(expected: Buffer, bodyLines: number): Buffer[] {
  const lines = linesOf(expected);
  const blank = lines.findIndex((l) => l.length === 0);
  return blank === -1 ? lines : lines.slice(0, blank + 1 + bodyLines);
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The expected bytes with LF line ends: how fetchmail (to an MDA) and mpop (to a maildir or mbox) store a message. */
export function lfForm(expected: Buffer): Buffer {
  return Buffer.from(expected.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
}

/** SHA-256 and size of a file from byte `start` on, read as a stream. */
export async function hashFile(path: string, start = 0): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { start }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

interface RawFixture {
  readonly name: string;
  readonly raw: Buffer;
}

const header = (name: string, extra: readonly string[] = []): string[] => [
  `From: Interop Tester <tester@example.org>`,
  `To: ${USER}@example.org`,
  `Subject: fixture ${name}`,
  `Message-ID: <${name}@poplar.test>`,
  `Date: Tue, 14 Nov 2023 22:13:20 +0000`,
  ...extra,
];

/** The small fixtures, in delivery order (= message numbers 1..n). */
function rawFixtures(): RawFixture[] {
  return [
    {
      // LF line ends, plus one CRLF line; lines that start with dots, lone-dot lines, a lone dot last.
      name: 'dots',
      raw: latin1(
        [
          ...header('dots'),
          '',
          '.a line with one leading dot',
          '..a line with two leading dots',
          '.',
          'the line above is a lone dot; the next line is one too, with CRLF\r',
          '.',
          '...',
          '. a dot and a space',
          'a dot in the middle . of a line, and at its end.',
          '.',
          '',
        ].join('\n'),
      ),
    },
    {
      name: 'lf-only',
      raw: latin1(
        [...header('lf-only'), '', 'Line one.', '', 'Line three, after an empty line.', ''].join('\n'),
      ),
    },
    {
      name: 'crlf',
      raw: latin1(
        [...header('crlf'), '', 'Already CRLF.', 'Second line.', '', 'Fourth line.', ''].join('\r\n'),
      ),
    },
    {
      name: 'no-final-newline',
      raw: latin1(
        [...header('no-final-newline'), '', 'First line.', 'The last line has no line end'].join('\n'),
      ),
    },
    {
      name: '8bit',
      raw: Buffer.concat([
        latin1(
          [
            ...header('8bit', [
              'MIME-Version: 1.0',
              'Content-Type: text/plain; charset=unknown-8bit',
              'Content-Transfer-Encoding: 8bit',
            ]),
            '',
            '',
          ].join('\n'),
        ),
        utf8('UTF-8: Grüße aus Köln – 日本語のテキスト – 🙂\n'),
        latin1('Latin-1, not UTF-8: caf\xe9, na\xefve, \xa9 2023\n'),
        Buffer.concat([
          latin1('Every high byte: '),
          Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)),
          latin1('\n'),
        ]),
        utf8('.Ünicode line starting with a dot\n'),
      ]),
    },
  ];
}

/** About 20 MiB stored, in chunks of lines of ordinary length. */
const BIG_TARGET_BYTES = 20 * 1024 * 1024;
const BIG_NAME = 'big';

/**
 * The big message's lines, chunk by chunk: deterministic, mostly 70-odd characters, every 97th
 * line starting with a dot and every 1009th line a lone dot. Yields the header first.
 */
function* bigChunks(): Generator<string[]> {
  yield [...header(BIG_NAME), ''];
  const filler = 'The quick brown fox jumps over the lazy dog; Pack my box with five dozen liquor jugs!';
  let stored = 0;
  let n = 0;
  while (stored < BIG_TARGET_BYTES) {
    const lines: string[] = [];
    for (let i = 0; i < 8192 && stored < BIG_TARGET_BYTES; i++, n++) {
      let line: string;
      if (n % 1009 === 1008) line = '.';
      else {
        const text = `${String(n).padStart(7, '0')} ${filler.slice(0, 40 + (n % 37))}`;
        line = n % 97 === 0 ? `.${text}` : text;
      }
      lines.push(line);
      stored += line.length + 1;
    }
    yield lines;
  }
}

/** Writes the big message (LF line ends) with a stream; computes its expected form's digest on the way. */
async function writeBig(path: string): Promise<Omit<BigFixture, 'name' | 'uid'>> {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  const hashLf = createHash('sha256');
  let size = 0;
  let lineCount = 0;
  try {
    for (const lines of bigChunks()) {
      const stored = lines.join('\n') + '\n';
      const expected = lines.join('\r\n') + '\r\n';
      hash.update(expected, 'latin1');
      hashLf.update(stored, 'latin1'); // stored with LF line ends and a final LF: the LF form as it is
      size += Buffer.byteLength(expected, 'latin1');
      lineCount += lines.length;
      if (!out.write(stored, 'latin1')) await once(out, 'drain');
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return { size, sha256: hash.digest('hex'), sha256Lf: hashLf.digest('hex'), lineCount };
}

export interface InteropServer {
  readonly server: Pop3Server;
  readonly port: number;
  /** The mail root (the store's root) and the user's maildir. */
  readonly root: string;
  readonly maildir: string;
  readonly user: string;
  readonly password: string;
  /** The small fixtures, message numbers 1..n in this order. */
  readonly fixtures: readonly Fixture[];
  /** Message n+1, when asked for. */
  readonly big: BigFixture | undefined;
  /** A fresh temporary directory for the client's own files, removed after the test. */
  readonly work: string;
  /** Resolves with the next session that ends (after its UPDATE state, if any). Call before starting the client. */
  nextClose(): Promise<ClosedSessionInfo>;
  /** Message files left in the maildir (new/ and cur/), sorted. */
  messageFiles(): Promise<string[]>;
}

export interface InteropServerOptions {
  /** Add the 20 MiB message as the last one. */
  readonly big?: boolean;
  /** With the static user list: offer APOP (a timestamp in the greeting); default true. */
  readonly apop?: boolean;
  /**
   * Use a PasswdFileAuthenticator instead, the password stored hashed (the default scheme) or
   * `{PLAIN}`. It offers APOP only when every password is `{PLAIN}`.
   */
  readonly passwdFile?: 'hashed' | 'plain';
  /** Offer SASL (CAPA's SASL line, AUTH); default true. Clients such as curl prefer it to APOP and USER. */
  readonly sasl?: boolean;
}

/**
 * Builds the fixture maildir in a temp mail root and serves it with a real server (MaildirStore,
 * a static user list or a passwd-file) on an ephemeral loopback port. Everything is removed after the test.
 */
export async function startInteropServer(
  t: TestContext,
  options: InteropServerOptions = {},
): Promise<InteropServer> {
  const root = await tempDir(t, 'poplar-interop-root-');
  const work = await tempDir(t, 'poplar-interop-work-');
  const raws = rawFixtures();
  const base = (i: number, name: string): string => `${1_700_000_000 + i}.M${i}P1.interop-${name}`;
  const { dir } = await buildMaildir(
    root,
    USER,
    raws.map((f, i) => ({ name: base(i + 1, f.name), content: f.raw })),
  );
  const fixtures = raws.map((f, i) => ({
    name: f.name,
    uid: base(i + 1, f.name),
    expected: normalise(f.raw),
  }));
  let big: BigFixture | undefined;
  if (options.big === true) {
    const uid = base(raws.length + 1, BIG_NAME);
    const written = await writeBig(join(dir, 'new', uid));
    big = { name: BIG_NAME, uid, ...written };
  }
  let authenticator: Authenticator;
  if (options.passwdFile === undefined) {
    const staticAuth = new StaticAuthenticator({ [USER]: PASSWORD });
    authenticator =
      options.apop === false ? { authenticate: (request) => staticAuth.authenticate(request) } : staticAuth;
  } else {
    const usersFile = join(work, 'users');
    const field = options.passwdFile === 'plain' ? `{PLAIN}${PASSWORD}` : await hashPassword(PASSWORD);
    await writeFile(usersFile, `${USER}:${field}\n`, { mode: 0o600 });
    const passwdFile = new PasswdFileAuthenticator(usersFile);
    await passwdFile.reload();
    authenticator = passwdFile;
  }
  const server = createServer({
    store: new MaildirStore({ root }),
    authenticator,
    hostname: 'poplar.test',
    limits: { authFailureDelayMs: 0 },
    ...(options.sasl === false ? { saslMechanisms: [] } : {}),
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close({ graceMs: 0 }));
  return {
    server,
    port,
    root,
    maildir: dir,
    user: USER,
    password: PASSWORD,
    fixtures,
    big,
    work,
    nextClose: async () => ((await once(server, 'close')) as [ClosedSessionInfo])[0],
    messageFiles: async () => {
      const names = [
        ...(await readdir(join(dir, 'new'))).map((n) => `new/${n}`),
        ...(await readdir(join(dir, 'cur'))).map((n) => `cur/${n}`),
      ];
      return names.filter((n) => !n.split('/')[1]?.startsWith('.')).sort();
    },
  };
}
