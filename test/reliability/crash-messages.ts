// Messages of known content for the crash loop: each carries a unique id in a header, and the
// kinds cover what a POP3 server must send exactly: bare LF line ends, lines starting with dots,
// 8-bit bytes, no final line end, large messages.

export const SMALL_KINDS = ['crlf', 'lf', 'dots', '8bit', 'no-final-eol', 'crlf', 'lf'] as const;
export type MessageKind = (typeof SMALL_KINDS)[number] | 'large';

/** The header that names a message: `X-Crash-Id: <id>`. */
export const ID_HEADER = /^X-Crash-Id: (\S+)$/m;

/** mulberry32: a small seeded generator, so a failing run's choices can be replayed. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What a POP3 client receives for stored bytes, before byte-stuffing (RFC 1939: CRLF, final CRLF). */
export function pop3Form(content: Buffer): Buffer {
  let text = content.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}

/** The bytes of a message of `kind` for `user`, identified by `id`. */
export function messageContent(id: string, user: string, kind: MessageKind, random: () => number): Buffer {
  const eol = kind === 'crlf' || kind === 'dots' ? '\r\n' : '\n';
  const header = `X-Crash-Id: ${id}${eol}Subject: ${kind} message${eol}${eol}`;
  const parts: Buffer[] = [Buffer.from(header, 'latin1')];
  switch (kind) {
    case 'dots':
      parts.push(Buffer.from(`.${eol}..${eol}.leading dot${eol}...${eol}text${eol}.${eol}`, 'latin1'));
      break;
    case '8bit': {
      const bytes = Buffer.alloc(300);
      for (let i = 0; i < bytes.length; i++) bytes[i] = 0x80 + Math.floor(random() * 128);
      parts.push(bytes, Buffer.from(`\nend of 8-bit\n`, 'latin1'));
      break;
    }
    case 'no-final-eol':
      parts.push(Buffer.from(`first line\n.dot line\nlast line without end`, 'latin1'));
      break;
    case 'large': {
      const lines: string[] = [];
      const target = 100_000 + Math.floor(random() * 600_000);
      for (let n = 0, bytes = 0; bytes < target; n++) {
        const line = `${n % 7 === 0 ? '.' : ''}line ${n} of a large message ${'x'.repeat(n % 90)}`;
        lines.push(line);
        bytes += line.length + 1;
      }
      // Mostly bare LF, as Maildir usually has it, sometimes CRLF.
      const lineEnd = random() < 0.7 ? '\n' : '\r\n';
      parts.push(Buffer.from(`${lines.join(lineEnd)}${lineEnd}`, 'latin1'));
      break;
    }
    case 'crlf':
    case 'lf':
      parts.push(Buffer.from(`Hello ${user}.${eol}${eol}Body of ${id}.${eol}`, 'latin1'));
      break;
  }
  return Buffer.concat(parts);
}
