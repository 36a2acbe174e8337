import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { topOfMessage } from '../../../src/pop3/message-top.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A source that records how many chunks were pulled and whether it was closed. */
function recordingSource(chunks: readonly string[]): {
  source: AsyncGenerator<Buffer>;
  readonly pulled: number;
  readonly isFinished: boolean;
} {
  const state = { pulled: 0, isFinished: false };
  // eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a file stream is
  async function* gen(): AsyncGenerator<Buffer> {
    try {
      for (const c of chunks) {
        state.pulled += 1;
        yield b(c);
      }
    } finally {
      state.isFinished = true;
    }
  }
  return {
    source: gen(),
    get pulled() {
      return state.pulled;
    },
    get isFinished() {
      return state.isFinished;
    },
  };
}

async function top(chunks: readonly string[], bodyLines: number): Promise<string> {
  const { source } = recordingSource(chunks);
  const out: Buffer[] = [];
  for await (const chunk of topOfMessage(source, bodyLines)) out.push(chunk);
  return Buffer.concat(out).toString('latin1');
}

/** Every way to cut `message` into two chunks gives `expected`. */
async function assertEverySplit(message: string, bodyLines: number, expected: string): Promise<void> {
  for (let i = 0; i <= message.length; i++) {
    assert.equal(await top([message.slice(0, i), message.slice(i)], bodyLines), expected, `split at ${i}`);
  }
  assert.equal(await top(message.split(''), bodyLines), expected, 'byte by byte');
}

const CRLF_MESSAGE = 'From: a\r\nSubject: b\r\n\r\nline 1\r\nline 2\r\nline 3\r\n';
const LF_MESSAGE = 'From: a\nSubject: b\n\nline 1\nline 2\nline 3\n';

describe('topOfMessage', () => {
  test('header, blank line and n body lines (CRLF)', async () => {
    await assertEverySplit(CRLF_MESSAGE, 2, 'From: a\r\nSubject: b\r\n\r\nline 1\r\nline 2\r\n');
  });

  test('header, blank line and n body lines (LF)', async () => {
    await assertEverySplit(LF_MESSAGE, 2, 'From: a\nSubject: b\n\nline 1\nline 2\n');
  });

  test('n = 0 gives the header and the blank line', async () => {
    await assertEverySplit(CRLF_MESSAGE, 0, 'From: a\r\nSubject: b\r\n\r\n');
    await assertEverySplit(LF_MESSAGE, 0, 'From: a\nSubject: b\n\n');
  });

  test('n at or past the number of body lines gives the whole message', async () => {
    await assertEverySplit(CRLF_MESSAGE, 3, CRLF_MESSAGE);
    await assertEverySplit(CRLF_MESSAGE, 100, CRLF_MESSAGE);
  });

  test('a last body line without line end is sent as it is (the stuffer adds the CRLF)', async () => {
    await assertEverySplit('H: v\r\n\r\nbody', 5, 'H: v\r\n\r\nbody');
    await assertEverySplit('H: v\r\n\r\nbody', 1, 'H: v\r\n\r\nbody');
  });

  test('a header without a blank line is the whole message', async () => {
    await assertEverySplit('From: a\r\nSubject: b\r\n', 0, 'From: a\r\nSubject: b\r\n');
    await assertEverySplit('From: a\nSubject: b', 0, 'From: a\nSubject: b');
  });

  test('mixed line ends: a bare LF ends the header too', async () => {
    await assertEverySplit('From: a\r\n\nbody 1\r\nbody 2\n', 1, 'From: a\r\n\nbody 1\r\n');
  });

  test('a message that starts with the blank line has an empty header', async () => {
    await assertEverySplit('\r\nbody 1\r\nbody 2\r\n', 1, '\r\nbody 1\r\n');
    await assertEverySplit('\nbody 1\nbody 2\n', 0, '\n');
  });

  test('a lone CR is not a line end and a CR-only line is not the blank line', async () => {
    await assertEverySplit('A: 1\r\r\nB: 2\r\n\r\nbody\r\n', 0, 'A: 1\r\r\nB: 2\r\n\r\n');
    await assertEverySplit('A: 1\rB\r\n\r\nbody\r\n', 0, 'A: 1\rB\r\n\r\n');
  });

  test('empty body lines count as lines', async () => {
    await assertEverySplit('H: v\r\n\r\n\r\n\r\nx\r\n', 2, 'H: v\r\n\r\n\r\n\r\n');
  });

  test('a dot line in the body is counted like any other', async () => {
    await assertEverySplit('H: v\n\n.\n..\nx\n', 2, 'H: v\n\n.\n..\n');
  });

  test('blank line split: CR in one chunk, LF in the next', async () => {
    assert.equal(await top(['H: v\r\n\r', '\nbody\r\n'], 0), 'H: v\r\n\r\n');
    assert.equal(await top(['H: v\r', '\n\r', '\nbody\r\n'], 0), 'H: v\r\n\r\n');
  });

  test('blank line split: LF at the end of one chunk', async () => {
    assert.equal(await top(['H: v\n', '\nbody\n'], 0), 'H: v\n\n');
    assert.equal(await top(['H: v\r\n', '\r\nbody\r\n'], 0), 'H: v\r\n\r\n');
    assert.equal(await top(['H: v\n\n', 'body\n'], 0), 'H: v\n\n');
  });

  test('a header line split so that a chunk holds only its last byte and the LF is not a blank line', async () => {
    assert.equal(await top(['H: ', 'v', '\n', 'I: w\n\nbody\n'], 0), 'H: v\nI: w\n\n');
    assert.equal(await top(['H: v\r\nI', '\r\n\r\nbody\r\n'], 0), 'H: v\r\nI\r\n\r\n');
  });

  test('unchanged chunks before the cut are passed on as they are', async () => {
    const first = b('H: v\r\n');
    // eslint-disable-next-line @typescript-eslint/require-await -- an async source
    async function* source(): AsyncGenerator<Buffer> {
      yield first;
      yield b('\r\nbody\r\n');
    }
    const out: Buffer[] = [];
    for await (const chunk of topOfMessage(source(), 0)) out.push(chunk);
    assert.equal(out[0], first);
    assert.deepEqual(out.slice(1), [b('\r\n')]);
  });

  test('stops pulling from the source after the cut and closes it', async () => {
    const rec = recordingSource(['H: v\r\n', '\r\n', 'line 1\r\n', 'line 2\r\n', 'line 3\r\n', 'line 4\r\n']);
    const out: Buffer[] = [];
    for await (const chunk of topOfMessage(rec.source, 1)) out.push(chunk);
    assert.equal(Buffer.concat(out).toString('latin1'), 'H: v\r\n\r\nline 1\r\n');
    assert.equal(rec.pulled, 3, 'no chunk after the one holding the cut is pulled');
    assert.equal(rec.isFinished, true, "the source's finally block ran");
  });

  test('TOP n 0 on a huge message pulls only the head', async () => {
    let pulled = 0;
    let isClosed = false;
    // eslint-disable-next-line @typescript-eslint/require-await -- an async source
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        yield b('Subject: big\r\n\r\n');
        for (;;) {
          pulled += 1;
          yield Buffer.alloc(65536, 0x78);
        }
      } finally {
        isClosed = true;
      }
    }
    const out: Buffer[] = [];
    for await (const chunk of topOfMessage(endless(), 0)) out.push(chunk);
    assert.equal(Buffer.concat(out).toString('latin1'), 'Subject: big\r\n\r\n');
    assert.equal(pulled, 0);
    assert.equal(isClosed, true);
  });

  test('the source is closed when the consumer stops early', async () => {
    const rec = recordingSource(['H: v\r\n', '\r\n', 'a\r\n', 'b\r\n']);
    for await (const chunk of topOfMessage(rec.source, 10)) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.equal(rec.pulled, 1);
    assert.equal(rec.isFinished, true);
  });

  test('an empty message gives nothing', async () => {
    assert.equal(await top([], 0), '');
    assert.equal(await top([''], 3), '');
  });
});
