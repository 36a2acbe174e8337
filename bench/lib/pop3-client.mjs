// A small POP3 client for load generation: Buffer parsing only, replies matched to commands in
// order (so pipelined commands work, and one-at-a-time ones too), message bodies counted, never
// turned into strings.
import { performance } from 'node:perf_hooks';
import { connect } from 'node:net';

const CRLF = Buffer.from('\r\n');
const TERM = Buffer.from('\r\n.\r\n');

export class Pop3Conn {
  #socket;
  #queue = [];
  #line = Buffer.alloc(0);
  #body = undefined; // { reply, tail, chunks? }
  #closed = false;
  #error = undefined;

  constructor(socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => {
      this.#onData(chunk);
    });
    socket.on('error', (err) => {
      this.#fail(err);
    });
    socket.on('close', () => {
      this.#fail(new Error('connection closed'));
    });
  }

  /** Connects and waits for the greeting. */
  static async open(port, timeoutMs = 30_000) {
    const socket = connect({ port, host: '127.0.0.1' });
    const conn = new Pop3Conn(socket);
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(new Error('timeout'));
    });
    const greeting = await conn.expect(false);
    if (!greeting.ok) throw new Error(`greeting: ${greeting.status}`);
    return conn;
  }

  setTimeout(ms) {
    this.#socket.setTimeout(ms);
  }

  send(text) {
    this.#socket.write(text);
  }

  /** The next reply: multi-line if `multi` and +OK. `collect` keeps the body (small replies only). */
  expect(multi, collect = false) {
    return new Promise((resolve, reject) => {
      if (this.#error !== undefined) {
        reject(this.#error);
        return;
      }
      this.#queue.push({ multi, collect, resolve, reject });
    });
  }

  close() {
    this.#closed = true;
    this.#socket.destroy();
  }

  #fail(err) {
    if (this.#error === undefined) this.#error = this.#closed ? new Error('closed') : err;
    for (const q of this.#queue.splice(0)) q.reject(this.#error);
  }

  #onData(chunk) {
    let data = chunk;
    while (data.length > 0) {
      if (this.#body !== undefined) {
        data = this.#onBody(data);
        continue;
      }
      const joined = this.#line.length === 0 ? data : Buffer.concat([this.#line, data]);
      const eol = joined.indexOf(CRLF);
      if (eol === -1) {
        this.#line = joined;
        return;
      }
      this.#line = Buffer.alloc(0);
      const status = joined.subarray(0, eol).toString('latin1');
      data = joined.subarray(eol + 2);
      const q = this.#queue.shift();
      if (q === undefined) {
        this.#socket.destroy(new Error(`unexpected reply: ${status}`));
        return;
      }
      const reply = { ok: status.startsWith('+OK'), status, bytes: 0, body: undefined };
      if (q.multi && reply.ok) {
        this.#body = { q, reply, tail: CRLF, chunks: q.collect ? [] : undefined };
      } else {
        q.resolve(reply);
      }
    }
  }

  /** Scans one piece of a multi-line body for CRLF.CRLF; returns what follows it. */
  #onBody(data) {
    const b = this.#body;
    // The terminator may straddle the previous piece: look at its tail plus our first bytes.
    const head = Buffer.concat([b.tail, data.subarray(0, 4)]);
    let end = -1;
    const i = head.indexOf(TERM);
    if (i !== -1) end = i + 5 - b.tail.length;
    else {
      const j = data.indexOf(TERM);
      if (j !== -1) end = j + 5;
    }
    if (end === -1) {
      b.reply.bytes += data.length;
      b.chunks?.push(data);
      // Only the last 4 bytes matter for a terminator split across pieces: never copy the piece.
      b.tail =
        data.length >= 4
          ? Buffer.from(data.subarray(data.length - 4))
          : Buffer.concat([b.tail, data]).subarray(-4);
      return Buffer.alloc(0);
    }
    // Bytes before ".\r\n" belong to the body (the CRLF ending its last line included).
    const bodyEnd = end - 3;
    b.reply.bytes += bodyEnd;
    if (b.chunks !== undefined) {
      b.chunks.push(data.subarray(0, Math.max(0, bodyEnd)));
      b.reply.body = Buffer.concat(b.chunks);
    }
    this.#body = undefined;
    b.q.resolve(b.reply);
    return data.subarray(end);
  }
}

/** Parses a LIST body into sizes indexed by message number. */
export function parseList(body) {
  const sizes = [];
  for (const line of body.toString('latin1').split('\r\n')) {
    const m = /^(\d+) (\d+)/.exec(line);
    if (m !== null) sizes[Number(m[1])] = Number(m[2]);
  }
  return sizes;
}

/**
 * One full session: login, STAT, LIST, UIDL, then RETR of every message and QUIT. Pipelined
 * (default): the first five commands in one write, the RETRs and QUIT in a second. `serial`: one
 * command at a time, each sent once the previous reply is whole, as Thunderbird and Outlook do.
 * Resolves to { ms, bytes, messages }; throws on any -ERR or I/O error.
 */
export async function fullSession(
  port,
  user,
  password,
  { timeoutMs = 30_000, retr = true, serial = false } = {},
) {
  const started = performance.now();
  const conn = await Pop3Conn.open(port, timeoutMs);
  try {
    const r = serial
      ? await serialSession(conn, user, password, retr)
      : await pipelinedSession(conn, user, password, retr);
    return { ms: performance.now() - started, ...r };
  } finally {
    conn.close();
  }
}

const statCount = (user, reply) => {
  const count = Number(/^\+OK (\d+)/.exec(reply.status)?.[1] ?? NaN);
  if (!Number.isInteger(count)) throw new Error(`${user}: bad STAT ${reply.status}`);
  return count;
};

async function pipelinedSession(conn, user, password, retr) {
  conn.send(`USER ${user}\r\nPASS ${password}\r\nSTAT\r\nLIST\r\nUIDL\r\n`);
  const replies = await Promise.all([
    conn.expect(false),
    conn.expect(false),
    conn.expect(false),
    conn.expect(true, true),
    conn.expect(true),
  ]);
  const bad = replies.find((r) => !r.ok);
  if (bad !== undefined) throw new Error(`${user}: ${bad.status}`);
  const count = statCount(user, replies[2]);
  let bytes = 0;
  const pending = [];
  let cmds = '';
  if (retr) {
    for (let n = 1; n <= count; n++) {
      cmds += `RETR ${n}\r\n`;
      pending.push(conn.expect(true));
    }
  }
  cmds += 'QUIT\r\n';
  pending.push(conn.expect(false));
  conn.send(cmds);
  for (const r of await Promise.all(pending)) {
    if (!r.ok) throw new Error(`${user}: ${r.status}`);
    bytes += r.bytes;
  }
  return { bytes, messages: count };
}

/** Sends one command, waits for its whole reply, throws on -ERR (the message names `user`). */
export async function command(conn, user, line, multi, collect = false) {
  const reply = conn.expect(multi, collect);
  conn.send(`${line}\r\n`);
  const r = await reply;
  if (!r.ok) throw new Error(`${user}: ${line.split(' ')[0]}: ${r.status}`);
  return r;
}

async function serialSession(conn, user, password, retr) {
  await command(conn, user, `USER ${user}`, false);
  await command(conn, user, `PASS ${password}`, false);
  const count = statCount(user, await command(conn, user, 'STAT', false));
  await command(conn, user, 'LIST', true, true);
  await command(conn, user, 'UIDL', true);
  let bytes = 0;
  if (retr) {
    for (let n = 1; n <= count; n++) bytes += (await command(conn, user, `RETR ${n}`, true)).bytes;
  }
  await command(conn, user, 'QUIT', false);
  return { bytes, messages: count };
}

/** A poll as a mail client makes it every few minutes: USER, PASS, STAT, QUIT, one at a time. */
export async function poll(port, user, password, timeoutMs = 30_000) {
  const started = performance.now();
  const conn = await Pop3Conn.open(port, timeoutMs);
  try {
    await command(conn, user, `USER ${user}`, false);
    await command(conn, user, `PASS ${password}`, false);
    const messages = statCount(user, await command(conn, user, 'STAT', false));
    await command(conn, user, 'QUIT', false);
    return { ms: performance.now() - started, messages };
  } finally {
    conn.close();
  }
}
