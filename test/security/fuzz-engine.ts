// A bounded network fuzzer for a running Poplar: random and mutated POP3 traffic and monitor
// protocol frames over many concurrent loopback connections. Used in short mode by
// fuzz.test.ts and in long mode by scripts/fuzz.mjs.
//
// Everything a connection sends comes from a PRNG seeded with (seed, connection number), so a
// run is reproducible from its seed; the interleaving of connections, and therefore the server's
// timing, is not. The fuzzer never depends on the server's replies: every wait is bounded, every
// socket error and every close by the server is expected, and the whole run stops after `lines`
// lines or `maxDurationMs`, whichever comes first.
import { createHash, createHmac } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as connectTls, TLSSocket } from 'node:tls';

// ---------------------------------------------------------------------------------------------
// The PRNG: sfc32, seeded through splitmix32. Small, fast, and the same on every platform.

function splitmix32(state: number): [value: number, next: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [(z ^ (z >>> 16)) >>> 0, next];
}

export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** A generator for `seed`; `stream` gives independent generators for the same seed. */
  constructor(seed: number, stream = 0) {
    let state = seed | 0;
    const words: number[] = [];
    [, state] = splitmix32(state ^ Math.imul(stream | 0, 0x27d4eb2d));
    for (let i = 0; i < 4; i++) {
      let value: number;
      [value, state] = splitmix32(state);
      words.push(value);
    }
    [this.#a, this.#b, this.#c, this.#d] = words as [number, number, number, number];
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A uint32. */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** In [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [0, max). */
  int(max: number): number {
    return Math.floor(this.float() * max);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from nothing');
    return items[this.int(items.length)] as T;
  }

  /** One of `choices`, chosen with the given weights. */
  weighted<T>(choices: readonly (readonly [weight: number, value: T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let x = this.float() * total;
    for (const [w, value] of choices) {
      x -= w;
      if (x < 0) return value;
    }
    return (choices[choices.length - 1] as readonly [number, T])[1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// What the fuzzer sends.

/**
 * User names that must never reach outside the mail root or be accepted anywhere: parent and
 * absolute paths, separators, NUL and other control characters, Unicode look-alikes and
 * overlong names. None of them is a valid Poplar user name.
 */
export const HOSTILE_NAMES: readonly string[] = [
  '..',
  '.',
  '../x',
  '../../../../etc/passwd',
  '/etc',
  '/etc/passwd',
  'a/b',
  'a\\b',
  '..\\x',
  'x\0y',
  '\0',
  'alice\0',
  '.hidden',
  '..alice',
  'alice/',
  '/alice',
  'alice/../bob',
  'alice\r\nbob',
  'alice\tbob',
  'alice bob',
  '\u2025/x', // two-dot leader
  '\u2024\u2024', // one-dot leaders that look like ..
  '\uff0e\uff0e\uff0fx', // fullwidth ../x
  '\u2215etc', // division slash
  '\u29f8etc', // big solidus
  'a\u0338lice', // combining overlay
  '\u0430lice', // Cyrillic a
  'alice\u200b', // zero-width space
  '\u202eecila', // right-to-left override
  'alice\ufeff',
  '%2e%2e%2fx',
  '~root',
  '$(touch pwned)',
  '`touch pwned`',
  'a;rm -rf x',
  'x'.repeat(65),
  'y'.repeat(256),
  'z'.repeat(5000),
];

const VERBS = [
  'USER',
  'PASS',
  'APOP',
  'AUTH',
  'STLS',
  'CAPA',
  'QUIT',
  'STAT',
  'LIST',
  'RETR',
  'DELE',
  'NOOP',
  'RSET',
  'TOP',
  'UIDL',
] as const;
const TRANSACTION_VERBS = ['STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'CAPA'] as const;
const MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'OAUTHBEARER', 'XOAUTH2', 'GSSAPI'];
const NUMBERS = [
  '0',
  '1',
  '2',
  '3',
  '-1',
  '+1',
  '00001',
  '1.0',
  '1e3',
  '0x10',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '99999999999999999999999999',
  '1 2',
  ' 1',
  '١', // Arabic-Indic one
  'Infinity',
  'NaN',
];
const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function letters(r: Prng, min: number, max: number): string {
  const n = r.range(min, max);
  let out = '';
  for (let i = 0; i < n; i++) out += String.fromCharCode((r.chance(0.5) ? 65 : 97) + r.int(26));
  return out;
}

function printable(r: Prng, min: number, max: number): string {
  const n = r.range(min, max);
  let out = '';
  for (let i = 0; i < n; i++) out += String.fromCharCode(0x21 + r.int(94));
  return out;
}

/** Base64, valid or subtly not: wrong lengths, stray padding, characters outside the alphabet. */
function garbageBase64(r: Prng): string {
  const kind = r.int(6);
  if (kind === 0) return r.bytes(r.range(0, 120)).toString('base64');
  let out = '';
  const n = r.range(0, kind === 5 ? 12_000 : 80);
  for (let i = 0; i < n; i++) out += BASE64_CHARS[r.int(64)] ?? 'A';
  if (kind === 1) return `${out}=`;
  if (kind === 2) return `=${out}==`;
  if (kind === 3) return `${out.slice(0, n >> 1)}!*~${out.slice(n >> 1)}`;
  return out;
}

/** One argument, mostly plausible, sometimes hostile. */
function argument(r: Prng, names: readonly string[]): string {
  return r.weighted<() => string>([
    [4, () => r.pick(NUMBERS)],
    [3, () => r.pick(names)],
    [3, () => r.pick(HOSTILE_NAMES)],
    [2, () => garbageBase64(r)],
    [2, () => printable(r, 1, 40)],
    [1, () => letters(r, 1, 12)],
    [1, () => ''],
    [1, () => ' '.repeat(r.range(1, 5))],
    [1, () => '"\\{}[]:,\'`$()|&;<>*?'],
  ])();
}

const TERMINATORS: readonly (readonly [number, string])[] = [
  [85, '\r\n'],
  [6, '\n'],
  [3, '\r'],
  [2, '\r\r\n'],
  [2, ''],
  [2, '\n\r'],
];

/** Applies one to three random byte-level mutations. */
function mutate(r: Prng, line: Buffer): Buffer {
  let out = line;
  const n = r.range(1, 3);
  for (let i = 0; i < n; i++) {
    const at = r.int(out.length + 1);
    const op = r.int(7);
    if (op === 0 && out.length > 0) {
      const copy = Buffer.from(out);
      const j = Math.min(at, copy.length - 1);
      copy[j] = (copy[j] ?? 0) ^ (1 << r.int(8));
      out = copy;
    } else if (op === 1) {
      out = Buffer.concat([
        out.subarray(0, at),
        Buffer.from([r.pick([0, 13, 10, 0x7f, 0xff, 0xc0, 9])]),
        out.subarray(at),
      ]);
    } else if (op === 2 && out.length > 0) {
      out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    } else if (op === 3) {
      const piece = out.subarray(at, at + r.range(1, 16));
      out = Buffer.concat([out.subarray(0, at), piece, piece, out.subarray(at)]);
    } else if (op === 4) {
      out = out.subarray(0, at);
    } else if (op === 5) {
      out = Buffer.concat([out.subarray(0, at), r.bytes(r.range(1, 8)), out.subarray(at)]);
    } else {
      // Invalid UTF-8: a lone continuation byte or a truncated sequence.
      out = Buffer.concat([
        out.subarray(0, at),
        Buffer.from(r.pick([[0x80], [0xe2, 0x82], [0xf0, 0x9f]])),
        out.subarray(at),
      ]);
    }
  }
  return out;
}

/** A command line with its terminator: a real verb with plausible or hostile arguments, maybe mutated. */
function commandLine(r: Prng, names: readonly string[], verbs: readonly string[] = VERBS): Buffer {
  const kind = r.weighted<string>([
    [80, 'known'],
    [5, 'unknown'],
    [3, 'http'],
    [4, 'overlong'],
    [4, 'binary'],
    [4, 'empty'],
  ]);
  let text: string;
  if (kind === 'known') {
    let verb = r.pick(verbs);
    if (r.chance(0.15)) verb = verb.toLowerCase();
    const args: string[] = [];
    const argc = r.weighted<number>([
      [30, 0],
      [45, 1],
      [20, 2],
      [5, 3],
    ]);
    for (let i = 0; i < argc; i++) args.push(argument(r, names));
    if (verb.toUpperCase() === 'AUTH' && args.length > 0 && r.chance(0.7)) args[0] = r.pick(MECHANISMS);
    text = [verb, ...args].join(r.chance(0.05) ? r.pick(['  ', '\t', ' \t ']) : ' ');
  } else if (kind === 'unknown') {
    text = `${letters(r, 1, 12)} ${printable(r, 0, 20)}`;
  } else if (kind === 'http') {
    text = r.pick(['GET / HTTP/1.1', 'POST /x HTTP/1.0', 'CONNECT a:1 HTTP/1.1', 'HEAD / HTTP/2']);
  } else if (kind === 'overlong') {
    const n = r.pick([254, 255, 256, 1023, 1024, 1025, 4096, 8191, 8192, 8193, 65_536, 70_000]);
    text = `${r.pick(verbs)} ${'A'.repeat(n)}`;
  } else if (kind === 'binary') {
    const bytes = r.bytes(r.range(1, 300));
    return Buffer.concat([bytes, Buffer.from(r.weighted(TERMINATORS))]);
  } else {
    text = r.pick(['', ' ', '\t', '  ']);
  }
  let line: Buffer = Buffer.from(text, r.chance(0.1) ? 'latin1' : 'utf8');
  if (r.chance(0.12)) line = mutate(r, line);
  return Buffer.concat([line, Buffer.from(r.weighted(TERMINATORS))]);
}

// ---------------------------------------------------------------------------------------------
// Scenarios: what one connection does, as a list of steps run in order.

interface WireState {
  /** Everything received on the current socket (plain, then TLS after STLS). */
  readonly text: string;
}

type Step =
  | { readonly kind: 'write'; readonly data: Buffer; readonly lines: number }
  /** A write made from what the server sent (APOP's timestamp, CRAM-MD5's challenge). */
  | {
      readonly kind: 'reply';
      readonly make: (state: WireState) => Buffer | undefined;
      readonly lines: number;
    }
  /** Waits for any new data (or a close), at most `ms`. */
  | { readonly kind: 'wait'; readonly ms: number }
  /** Waits until the received text contains `text`, at most `ms`. */
  | { readonly kind: 'expect'; readonly text: string; readonly ms: number }
  /** After `+OK` to STLS: the TLS handshake on the same connection (skipped if no +OK came). */
  | { readonly kind: 'tls'; readonly garbage: boolean }
  /** Half-close: no more writes, wait (bounded) for the server to close. */
  | { readonly kind: 'end' }
  | { readonly kind: 'destroy' }
  | { readonly kind: 'reset' };

interface Scenario {
  readonly target: 'pop3' | 'monitor';
  readonly steps: Step[];
}

export interface FuzzCredentials {
  readonly user: string;
  readonly password: string;
}

interface Context {
  readonly names: readonly string[];
  readonly credentials: readonly FuzzCredentials[];
  readonly monitorToken: string | undefined;
  readonly hasMonitor: boolean;
  readonly replyWaitMs: number;
}

const write = (data: Buffer | string, lines = 1): Step => ({
  kind: 'write',
  data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
  lines,
});

/** Writes `lines` as one pipelined burst, or one by one with bounded waits for a reply. */
function send(r: Prng, ctx: Context, steps: Step[], lines: readonly Buffer[]): void {
  if (lines.length === 0) return;
  if (r.chance(0.4)) {
    // Pipelined, in one write or cut at random byte offsets.
    const all = Buffer.concat(lines);
    if (r.chance(0.7)) {
      steps.push(write(all, lines.length));
    } else {
      let at = 0;
      let left = lines.length;
      while (at < all.length) {
        const next = Math.min(all.length, at + r.range(1, 64));
        const count = next >= all.length ? left : 0;
        left -= count;
        steps.push(write(all.subarray(at, next), count));
        at = next;
      }
    }
    steps.push({ kind: 'wait', ms: ctx.replyWaitMs });
    return;
  }
  for (const line of lines) {
    steps.push(write(line));
    if (r.chance(0.7)) steps.push({ kind: 'wait', ms: ctx.replyWaitMs });
  }
}

function ending(r: Prng, steps: Step[], withQuit: boolean): void {
  const how = r.weighted<string>([
    [withQuit ? 40 : 0, 'quit'],
    [25, 'end'],
    [25, 'destroy'],
    [10, 'reset'],
  ]);
  if (how === 'quit') {
    steps.push(write('QUIT\r\n'), { kind: 'end' });
  } else if (how === 'end') {
    steps.push({ kind: 'end' });
  } else if (how === 'destroy') {
    steps.push({ kind: 'destroy' });
  } else {
    steps.push({ kind: 'reset' });
  }
}

/** Random commands before login. */
function pop3Random(r: Prng, ctx: Context): Scenario {
  const steps: Step[] = [];
  if (r.chance(0.5)) steps.push({ kind: 'expect', text: '\r\n', ms: ctx.replyWaitMs });
  const lines = Array.from({ length: r.range(1, 24) }, () => commandLine(r, ctx.names));
  send(r, ctx, steps, lines);
  ending(r, steps, true);
  return { target: 'pop3', steps };
}

/** Raw bytes: NULs, bare CRs, high bytes, overlong lines without an end, then a half-close or not. */
function pop3Raw(r: Prng, ctx: Context): Scenario {
  const steps: Step[] = [];
  const count = r.range(1, 12);
  for (let i = 0; i < count; i++) {
    const chunk = r.weighted<() => Buffer>([
      [4, () => r.bytes(r.range(1, 512))],
      [2, () => Buffer.alloc(r.range(1, 2048), 0)],
      [2, () => Buffer.from('\r'.repeat(r.range(1, 600)))],
      [2, () => Buffer.from(`USER ${'\r'.repeat(r.range(1, 40))}x\r\n`)],
      [1, () => Buffer.alloc(r.pick([1025, 8193, 70_000, 200_000]), 0x41)],
      [1, () => Buffer.from('\n'.repeat(r.range(1, 300)))],
      [1, () => Buffer.from('\r\n'.repeat(r.range(1, 300)))],
    ])();
    steps.push(write(chunk));
    if (r.chance(0.3)) steps.push({ kind: 'wait', ms: ctx.replyWaitMs });
  }
  ending(r, steps, false);
  return { target: 'pop3', steps };
}

/** A login as one of the fuzz users (by USER/PASS, APOP, AUTH PLAIN, LOGIN or CRAM-MD5), then random commands. */
function pop3Session(r: Prng, ctx: Context): Scenario {
  const steps: Step[] = [];
  const cred = r.pick(ctx.credentials);
  const method = r.pick(['USER', 'APOP', 'PLAIN', 'PLAIN-IR', 'LOGIN', 'CRAM-MD5']);
  if (method === 'USER') {
    steps.push(write(`USER ${cred.user}\r\nPASS ${cred.password}\r\n`, 2));
  } else if (method === 'APOP') {
    steps.push({ kind: 'expect', text: '\r\n', ms: ctx.replyWaitMs * 4 });
    steps.push({
      kind: 'reply',
      lines: 1,
      make: (state) => {
        const stamp = /<[^>]*>/.exec(state.text)?.[0];
        if (stamp === undefined) return Buffer.from(`APOP ${cred.user} ${'0'.repeat(32)}\r\n`);
        const digest = createHash('md5')
          .update(stamp + cred.password, 'utf8')
          .digest('hex');
        return Buffer.from(`APOP ${cred.user} ${digest}\r\n`);
      },
    });
  } else if (method === 'PLAIN' || method === 'PLAIN-IR') {
    const message = Buffer.from(`\0${cred.user}\0${cred.password}`).toString('base64');
    steps.push(
      method === 'PLAIN-IR' ? write(`AUTH PLAIN ${message}\r\n`) : write(`AUTH PLAIN\r\n${message}\r\n`, 2),
    );
  } else if (method === 'LOGIN') {
    const user = Buffer.from(cred.user).toString('base64');
    const password = Buffer.from(cred.password).toString('base64');
    steps.push(write(`AUTH LOGIN\r\n${user}\r\n${password}\r\n`, 3));
  } else {
    steps.push(write('AUTH CRAM-MD5\r\n'), { kind: 'expect', text: '+ ', ms: ctx.replyWaitMs * 4 });
    steps.push({
      kind: 'reply',
      lines: 1,
      make: (state) => {
        const m = /\+ ([A-Za-z0-9+/=]*)\r\n/.exec(state.text);
        if (m === null) return Buffer.from('*\r\n');
        const challenge = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
        const digest = createHmac('md5', cred.password).update(challenge).digest('hex');
        return Buffer.from(`${Buffer.from(`${cred.user} ${digest}`).toString('base64')}\r\n`);
      },
    });
  }
  steps.push({ kind: 'wait', ms: ctx.replyWaitMs });
  const lines = Array.from({ length: r.range(1, 30) }, () =>
    commandLine(r, ctx.names, r.chance(0.9) ? TRANSACTION_VERBS : VERBS),
  );
  send(r, ctx, steps, lines);
  // Deletions are committed only by QUIT; most sessions take them back, so that the fuzz users'
  // mailboxes keep some mail for the rest of a long run.
  if (r.chance(0.85)) steps.push(write('RSET\r\n'));
  ending(r, steps, true);
  return { target: 'pop3', steps };
}

/** SASL exchanges with garbage: bad base64, hostile identities, cancels, overlong continuations. */
function pop3Sasl(r: Prng, ctx: Context): Scenario {
  const steps: Step[] = [];
  const rounds = r.range(1, 4);
  for (let i = 0; i < rounds; i++) {
    const mechanism = r.pick(MECHANISMS);
    const name = r.chance(0.5) ? r.pick(HOSTILE_NAMES) : r.pick(ctx.names);
    const cred = ctx.credentials.length > 0 && r.chance(0.3) ? r.pick(ctx.credentials) : undefined;
    const payload = r.weighted<() => string>([
      [3, () => garbageBase64(r)],
      // PLAIN with a hostile authorization identity, and the right password of a fuzz user.
      [
        2,
        () =>
          Buffer.from(`${name}\0${cred?.user ?? name}\0${cred?.password ?? printable(r, 1, 12)}`).toString(
            'base64',
          ),
      ],
      [1, () => Buffer.from(`${name}\0${name}`).toString('base64')],
      [1, () => Buffer.from(`n,,n=${name},r=${printable(r, 1, 30)}`).toString('base64')],
      [1, () => Buffer.from(`n,a=${name},\x01auth=Bearer ${printable(r, 1, 40)}\x01\x01`).toString('base64')],
      [1, () => '='],
      [1, () => '*'],
    ])();
    const lines: Buffer[] = [];
    lines.push(Buffer.from(r.chance(0.5) ? `AUTH ${mechanism} ${payload}\r\n` : `AUTH ${mechanism}\r\n`));
    const continuations = r.range(0, 3);
    for (let j = 0; j < continuations; j++) {
      lines.push(
        Buffer.from(
          `${r.weighted<() => string>([
            [4, () => garbageBase64(r)],
            [1, () => '*'],
            [1, () => ''],
            [1, () => 'A'.repeat(r.pick([8191, 8192, 8193, 70_000]))],
            [1, () => Buffer.from(`${name} ${'a'.repeat(32)}`).toString('base64')],
          ])()}${r.weighted(TERMINATORS)}`,
          'latin1',
        ),
      );
    }
    send(r, ctx, steps, lines);
  }
  ending(r, steps, true);
  return { target: 'pop3', steps };
}

/** STLS with bytes injected after it, a real handshake or garbage instead of one, then commands. */
function pop3Stls(r: Prng, ctx: Context): Scenario {
  const steps: Step[] = [];
  const injected = r.chance(0.5)
    ? Array.from({ length: r.range(1, 4) }, () => commandLine(r, ctx.names))
    : [];
  steps.push(
    write(
      Buffer.concat([Buffer.from(r.pick(['STLS\r\n', 'stls\r\n', 'STLS\n'])), ...injected]),
      1 + injected.length,
    ),
  );
  // The reply to STLS (+OK Begin TLS negotiation, or an -ERR naming TLS), not just the greeting.
  steps.push({ kind: 'expect', text: 'TLS', ms: ctx.replyWaitMs * 4 });
  steps.push({ kind: 'tls', garbage: r.chance(0.25) });
  const lines: Buffer[] = [];
  if (ctx.credentials.length > 0 && r.chance(0.5)) {
    const cred = r.pick(ctx.credentials);
    lines.push(Buffer.from(`USER ${cred.user}\r\n`), Buffer.from(`PASS ${cred.password}\r\n`));
  }
  for (let i = r.range(1, 12); i > 0; i--) lines.push(commandLine(r, ctx.names));
  send(r, ctx, steps, lines);
  ending(r, steps, true);
  return { target: 'pop3', steps };
}

// Monitor frames (docs/monitor-protocol.md): VER(1) TOKEN(16) TYPE(1) TARGET(1) DLEN(2) DATA.

const GET_TARGETS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x20];

function frame(
  version: number,
  token: Buffer,
  type: number,
  target: number,
  data: Buffer,
  dlen = data.length,
): Buffer {
  const header = Buffer.alloc(21);
  header[0] = version;
  token.copy(header, 1, 0, 16);
  header[17] = type;
  header[18] = target;
  header.writeUInt16BE(dlen & 0xffff, 19);
  return Buffer.concat([header, data]);
}

/** A 16-byte token that is not the real one. */
function wrongToken(r: Prng, real: string | undefined): Buffer {
  for (;;) {
    const token = r.weighted<() => Buffer>([
      [3, () => Buffer.from(printable(r, 16, 16), 'latin1')],
      [2, () => r.bytes(16)],
      [1, () => Buffer.alloc(16, 0)],
      [
        2,
        () => {
          const t = Buffer.from(real ?? '123456789abcdef1', 'latin1');
          const i = r.int(16);
          t[i] = (t[i] ?? 0) ^ (1 + r.int(255));
          return t;
        },
      ],
    ])();
    if (real === undefined || token.toString('latin1') !== real) return token;
  }
}

/** DATA for a CONFIG: pairs, paths, digits, hostile names, random bytes. */
function configData(r: Prng): Buffer {
  const name = r.pick(HOSTILE_NAMES);
  return r.weighted<() => Buffer>([
    [2, () => Buffer.from(`${name}\0${printable(r, 1, 20)}`)],
    [2, () => Buffer.from(r.pick(['..', '../x', '/etc', '/', '.', 'a/b', '/nonexistent/../../etc']))],
    [1, () => Buffer.from(r.pick(['1024', '0', '-1', '99999999', 'x']))],
    [2, () => r.bytes(r.range(0, 300))],
    [1, () => Buffer.from(name)],
    [1, () => Buffer.alloc(0)],
  ])();
}

/**
 * DATA that a server with the real token must refuse (status 0x04) whatever the target: the
 * fuzzer may hold the real token, and must not change users, admins or the mail root with it.
 */
function refusedConfig(r: Prng): { target: number; data: Buffer } {
  const withSlash = `${letters(r, 0, 6)}/${r.pick(HOSTILE_NAMES)}`;
  return r.weighted<() => { target: number; data: Buffer }>([
    // Paths with a NUL, over 4096 bytes or not UTF-8 are refused before they are looked at.
    [
      2,
      () => ({ target: 0x00, data: Buffer.from(`${r.pick(['..', '/etc', '.', '/'])}\0${letters(r, 0, 8)}`) }),
    ],
    [1, () => ({ target: 0x00, data: Buffer.alloc(4097, 0x2f) })],
    [1, () => ({ target: 0x00, data: Buffer.from([0x2f, 0xff, 0xfe]) })],
    [
      2,
      () => ({
        target: 0x01,
        data: Buffer.from(r.pick(['0', '511', '1048577', '99999999', 'abc', '1 0', '+600', ''])),
      }),
    ],
    [2, () => ({ target: 0x02, data: Buffer.from(`${withSlash}\0${printable(r, 16, 16)}`) })],
    [1, () => ({ target: 0x03, data: Buffer.from(withSlash) })],
    [2, () => ({ target: 0x04, data: Buffer.from(`${r.pick(HOSTILE_NAMES)}\0${printable(r, 1, 20)}`) })],
    [1, () => ({ target: 0x04, data: Buffer.from(`${withSlash}\0pw`) })],
    [1, () => ({ target: 0x05, data: Buffer.from(withSlash) })],
    [2, () => ({ target: 0x06, data: Buffer.from(r.chance(0.5) ? withSlash : r.pick(HOSTILE_NAMES)) })],
  ])();
}

function monitorFrame(r: Prng, ctx: Context): Buffer {
  const real = ctx.monitorToken === undefined ? undefined : Buffer.from(ctx.monitorToken, 'latin1');
  const kind = r.weighted<string>([
    [real === undefined ? 0 : 3, 'get'],
    [real === undefined ? 0 : 2, 'refused-config'],
    [4, 'wrong-token'],
    [2, 'mutated'],
    [1, 'bad-dlen'],
    [1, 'random'],
  ]);
  if (kind === 'get' && real !== undefined) {
    const target = r.chance(0.85) ? r.pick(GET_TARGETS) : r.int(256);
    const data = r.pick([Buffer.alloc(0), Buffer.from([0]), r.bytes(r.range(0, 40))]);
    return frame(1, real, 0x00, target, data);
  }
  if (kind === 'refused-config' && real !== undefined) {
    const { target, data } = refusedConfig(r);
    return frame(1, real, 0x01, target, data);
  }
  const token = wrongToken(r, ctx.monitorToken);
  if (kind === 'wrong-token') {
    const type = r.weighted<number>([
      [5, 0],
      [5, 1],
      [1, r.int(256)],
    ]);
    return frame(
      r.chance(0.9) ? 1 : r.int(256),
      token,
      type,
      r.chance(0.8) ? r.int(0x21) : r.int(256),
      configData(r),
    );
  }
  if (kind === 'mutated') {
    const base = frame(1, token, r.int(2), r.int(8), configData(r));
    return mutate(r, base);
  }
  if (kind === 'bad-dlen') {
    // DLEN announcing more (or less) than is sent, up to 65535.
    const data = r.bytes(r.range(0, 64));
    return frame(1, token, r.int(2), r.int(8), data, r.pick([0, 1, data.length + 1, 8192, 8193, 65_535]));
  }
  return r.bytes(r.range(0, 80));
}

function monitorScenario(r: Prng, ctx: Context): Scenario {
  const steps: Step[] = [];
  const bytes = monitorFrame(r, ctx);
  const split = r.weighted<number>([
    [6, 1],
    [2, 2],
    [1, 5],
    [1, bytes.length],
  ]);
  let at = 0;
  for (let i = 0; i < split && at < bytes.length; i++) {
    const next =
      i === split - 1
        ? bytes.length
        : Math.min(bytes.length, at + r.range(1, Math.max(1, bytes.length >> 1)));
    steps.push(write(bytes.subarray(at, next), next === bytes.length ? 1 : 0));
    at = next;
  }
  if (bytes.length === 0) steps.push(write(bytes, 1));
  // Extra bytes after a whole request, as a pipelining client would send.
  if (r.chance(0.1)) steps.push(write(r.bytes(r.range(1, 64)), 0));
  steps.push(
    r.weighted<Step>([
      [5, { kind: 'wait', ms: ctx.replyWaitMs }],
      [3, { kind: 'end' }],
      [1, { kind: 'destroy' }],
      [1, { kind: 'reset' }],
    ]),
  );
  return { target: 'monitor', steps };
}

function scenario(r: Prng, ctx: Context): Scenario {
  const hasLogin = ctx.credentials.length > 0;
  const make = r.weighted<(r: Prng, ctx: Context) => Scenario>([
    [30, pop3Random],
    [10, pop3Raw],
    [hasLogin ? 25 : 0, pop3Session],
    [15, pop3Sasl],
    [6, pop3Stls],
    [ctx.hasMonitor ? 14 : 0, monitorScenario],
  ]);
  return make(r, ctx);
}

// ---------------------------------------------------------------------------------------------
// Running a scenario on a socket.

export interface FuzzProgress {
  readonly linesSent: number;
  readonly connections: number;
  readonly elapsedMs: number;
}

export interface FuzzReport extends FuzzProgress {
  readonly seed: number;
  readonly bytesSent: number;
  readonly pop3Connections: number;
  readonly monitorConnections: number;
  /** Connections that could not be opened (a refused connect is how a dead server shows). */
  readonly connectFailures: number;
  /** Connections the server closed before the scenario was over. */
  readonly closedByServer: number;
  readonly tlsHandshakes: number;
  /** Whether the run stopped at maxDurationMs rather than after `lines` lines. */
  readonly isTimedOut: boolean;
}

export interface FuzzConnection {
  /** The connection's number in the run: with the seed, it determines what is sent. */
  readonly index: number;
  readonly target: 'pop3' | 'monitor';
  readonly localPort: number;
  /** The steps, one per line: kind, and the first bytes of each write. */
  describe(): string;
}

export interface FuzzOptions {
  readonly pop3Port: number;
  /** The monitor's port; without it no monitor frames are sent. */
  readonly monitorPort?: number;
  readonly host?: string;
  /** Lines (POP3 lines and monitor frames) to send in all. */
  readonly lines: number;
  readonly seed: number;
  /** Connections open at once (default 32). */
  readonly concurrency?: number;
  /** The run stops starting connections after this long (default: no limit but `lines`). */
  readonly maxDurationMs?: number;
  /** Longest wait for a reply before the next step (default 150 ms). */
  readonly replyWaitMs?: number;
  /** Users whose logins the fuzzer may complete, to fuzz the TRANSACTION state. */
  readonly credentials?: readonly FuzzCredentials[];
  /**
   * The monitor's real admin token, for GET requests and CONFIG requests the server must refuse
   * (never a change). Every other frame carries a wrong token.
   */
  readonly monitorToken?: string;
  /** Called about every `progressEvery` lines (default: a twentieth of the run, at least 1000). */
  readonly onProgress?: (progress: FuzzProgress) => void;
  readonly progressEvery?: number;
  /**
   * Called for every connection opened, with the client's port (what the daemon logs as `port`)
   * and a description of what the connection sends, to find out what a connection the server
   * left hanging did.
   */
  readonly onConnection?: (connection: FuzzConnection) => void;
  /** Where the seed and other notes go (default: nowhere). */
  readonly log?: (message: string) => void;
}

function describeStep(step: Step): string {
  if (step.kind === 'write') {
    const shown = JSON.stringify(step.data.subarray(0, 120).toString('latin1'));
    return `write ${step.data.length} bytes ${shown}${step.data.length > 120 ? '...' : ''}`;
  }
  if (step.kind === 'wait' || step.kind === 'expect') return `${step.kind} ${step.ms} ms`;
  if (step.kind === 'tls') return step.garbage ? 'tls (garbage)' : 'tls';
  return step.kind;
}

/** Wall-clock bound of one connection, whatever its steps. */
const CONNECTION_DEADLINE_MS = 10_000;
/** How long a half-closed connection may wait for the server to close. */
const END_WAIT_MS = 1_000;

class Wire {
  socket: Socket;
  #chunks: Buffer[] = [];
  #waiters = new Set<() => void>();
  #isClosed = false;
  #isEnded = false;
  closedByServer = false;

  constructor(socket: Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  #listen(socket: Socket): void {
    socket.on('data', this.#onData);
    socket.on('error', () => {});
    socket.once('close', () => {
      if (socket !== this.socket) return;
      if (!this.#isEnded) this.closedByServer = true;
      this.#isClosed = true;
      this.#wake();
    });
  }

  readonly #onData = (chunk: Buffer): void => {
    // Only what is needed to find a greeting, a `+ challenge` or `+OK` is kept.
    if (this.#chunks.length < 64) this.#chunks.push(chunk.subarray(0, 4096));
    this.#wake();
  };

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  get isOpen(): boolean {
    return !this.#isClosed && !this.socket.destroyed && this.socket.writable;
  }

  get text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }

  /** Resolves at the next event (data, close) or after `ms`. */
  #next(ms: number): Promise<boolean> {
    if (this.#isClosed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        resolve(false);
      }, ms);
      this.#waiters.add(wake);
    });
  }

  async waitData(ms: number): Promise<void> {
    await this.#next(ms);
  }

  async expect(text: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (this.text.includes(text)) return true;
      const left = until - Date.now();
      if (left <= 0 || this.#isClosed) return false;
      await this.#next(left);
    }
  }

  write(data: Buffer): boolean {
    if (!this.isOpen) return false;
    this.socket.write(data);
    return true;
  }

  async end(): Promise<void> {
    this.#isEnded = true;
    if (!this.#isClosed) this.socket.end();
    const until = Date.now() + END_WAIT_MS;
    while (!this.#isClosed && Date.now() < until) await this.#next(until - Date.now());
    this.socket.destroy();
  }

  destroy(reset: boolean): void {
    this.#isEnded = true;
    // A TCP reset needs the TCP handle: not available once TLS wraps the socket.
    if (reset && !this.socket.destroyed && !(this.socket instanceof TLSSocket)) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  /** Replaces the socket by a TLS one over it; resolves to whether the handshake succeeded. */
  async startTls(ms: number): Promise<boolean> {
    const plain = this.socket;
    plain.off('data', this.#onData);
    this.#chunks = [];
    const secure = connectTls({ socket: plain, rejectUnauthorized: false });
    this.socket = secure;
    this.#listen(secure);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        done(false);
      }, ms);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        secure.off('secureConnect', onSecure);
        secure.off('close', onFail);
        secure.off('error', onFail);
        resolve(ok);
      };
      const onSecure = (): void => {
        done(true);
      };
      const onFail = (): void => {
        done(false);
      };
      secure.once('secureConnect', onSecure);
      secure.once('close', onFail);
      secure.once('error', onFail);
    });
  }
}

function open(host: string, port: number, ms: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    });
  });
}

/**
 * Sends `lines` lines of random and mutated POP3 and monitor traffic over up to `concurrency`
 * connections at once, and resolves with what was done. Never rejects because of the server.
 */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const host = options.host ?? '127.0.0.1';
  const concurrency = options.concurrency ?? 32;
  const seed = options.seed >>> 0;
  const started = Date.now();
  const deadline = options.maxDurationMs === undefined ? Infinity : started + options.maxDurationMs;
  const progressEvery = options.progressEvery ?? Math.max(1000, Math.floor(options.lines / 20));
  const credentials = options.credentials ?? [];
  options.log?.(`fuzz seed ${seed} (replay with the same seed to send the same traffic)`);
  const ctx: Context = {
    names: ['alice', 'bob', 'root', 'foo', ...credentials.map((c) => c.user)],
    credentials,
    monitorToken: options.monitorToken,
    hasMonitor: options.monitorPort !== undefined,
    replyWaitMs: options.replyWaitMs ?? 150,
  };

  let linesSent = 0;
  let bytesSent = 0;
  let connections = 0;
  let pop3Connections = 0;
  let monitorConnections = 0;
  let connectFailures = 0;
  let closedByServer = 0;
  let tlsHandshakes = 0;
  let nextProgress = progressEvery;
  let isTimedOut = false;

  const progress = (): FuzzProgress => ({ linesSent, connections, elapsedMs: Date.now() - started });

  const runStep = async (wire: Wire, step: Step): Promise<boolean> => {
    switch (step.kind) {
      case 'write':
      case 'reply': {
        const data = step.kind === 'write' ? step.data : step.make({ text: wire.text });
        if (data === undefined || !wire.write(data)) return false;
        linesSent += step.lines;
        bytesSent += data.length;
        if (linesSent >= nextProgress) {
          nextProgress += progressEvery;
          options.onProgress?.(progress());
        }
        return true;
      }
      case 'wait':
        await wire.waitData(step.ms);
        return wire.isOpen;
      case 'expect':
        await wire.expect(step.text, step.ms);
        return wire.isOpen;
      case 'tls': {
        // Only once the server said +OK to STLS; anything else and the session goes on in the clear.
        if (!wire.text.includes('+OK Begin TLS')) return wire.isOpen;
        if (step.garbage) {
          wire.write(Buffer.from('\x16\x03\x01\x00\x05hello garbage, not a ClientHello\r\n'));
          return wire.isOpen;
        }
        if (await wire.startTls(ctx.replyWaitMs * 20)) tlsHandshakes += 1;
        return wire.isOpen;
      }
      case 'end':
        await wire.end();
        return false;
      case 'destroy':
        wire.destroy(false);
        return false;
      case 'reset':
        wire.destroy(true);
        return false;
    }
  };

  const runConnection = async (index: number): Promise<void> => {
    const r = new Prng(seed, index + 1);
    const plan = scenario(r, ctx);
    const port = plan.target === 'pop3' ? options.pop3Port : options.monitorPort;
    if (port === undefined) return;
    connections += 1;
    if (plan.target === 'pop3') pop3Connections += 1;
    else monitorConnections += 1;
    const socket = await open(host, port, 5_000);
    if (socket === undefined) {
      connectFailures += 1;
      // Count the lines as sent: a dead server must not make the run last forever.
      linesSent += plan.steps.reduce(
        (sum, s) => sum + (s.kind === 'write' || s.kind === 'reply' ? s.lines : 0),
        0,
      );
      return;
    }
    options.onConnection?.({
      index,
      target: plan.target,
      localPort: socket.localPort ?? 0,
      describe: () => plan.steps.map(describeStep).join('\n'),
    });
    const wire = new Wire(socket);
    const guard = setTimeout(() => {
      wire.destroy(false);
    }, CONNECTION_DEADLINE_MS);
    try {
      for (const step of plan.steps) {
        if (!(await runStep(wire, step))) break;
      }
    } finally {
      clearTimeout(guard);
      if (wire.closedByServer) closedByServer += 1;
      wire.destroy(false);
    }
  };

  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (linesSent < options.lines) {
      if (Date.now() >= deadline) {
        isTimedOut = true;
        return;
      }
      await runConnection(nextIndex++);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    ...progress(),
    seed,
    bytesSent,
    pop3Connections,
    monitorConnections,
    connectFailures,
    closedByServer,
    tlsHandshakes,
    isTimedOut,
  };
}
