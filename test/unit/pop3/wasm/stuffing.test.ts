import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { nodeScript } from '../../../helpers/node-script.js';
import { DotStuffing } from '../../../../src/pop3/dot-stuffer.js';
import { hasWasmStuffing, stuffPiece, WASM_PIECE_BYTES } from '../../../../src/pop3/wasm/stuffing.js';

/** DotStuffing over the chunks, end() included. */
function stuff(chunks: readonly Buffer[]): Buffer {
  const stuffing = new DotStuffing();
  const out = chunks.map((chunk) => stuffing.push(chunk));
  out.push(stuffing.end());
  return Buffer.concat(out);
}

/** Pieces of at most `size` bytes: below 64 bytes DotStuffing takes its JavaScript path. */
function cut(message: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) pieces.push(message.subarray(at, at + size));
  return pieces;
}

/** Text as MTAs deliver it: lines of 0 to 120 bytes, some dot-led or with CRs, LF or CRLF ends. */
const textArb = fc
  .array(
    fc.record({
      body: fc.string({ unit: fc.constantFrom('a', ' ', '.', '\r', '\u00e9'), maxLength: 120 }),
      end: fc.constantFrom('\n', '\n', '\n', '\r\n', ''),
    }),
    { maxLength: 60 },
  )
  .map((lines) => Buffer.from(lines.map((l) => l.body + l.end).join(''), 'latin1'));

describe('byte-stuffing in WebAssembly', () => {
  test('is available here (Node 20 has WebAssembly with SIMD)', () => {
    assert.ok(hasWasmStuffing());
  });

  test('gives the bytes of the JavaScript path (chunks under 64 bytes), for any text and chunking', () => {
    fc.assert(
      fc.property(textArb, fc.integer({ min: 64, max: 4096 }), (message, size) => {
        assert.deepEqual(stuff(cut(message, size)), stuff(cut(message, 63)));
      }),
      { numRuns: 1000 },
    );
  });

  test('returns the chunk itself when nothing changes, a new buffer otherwise', () => {
    const clean = Buffer.from('Subject: x\r\n\r\nno bare LF, no dot at a line start\r\n'.repeat(4));
    assert.equal(stuffPiece(clean, true, false), clean);
    const lf = Buffer.from('a line\n'.repeat(20));
    const out = stuffPiece(lf, true, false);
    assert.notEqual(out, lf);
    assert.deepEqual(out, Buffer.from('a line\r\n'.repeat(20)));
    assert.deepEqual(lf, Buffer.from('a line\n'.repeat(20)), 'the input is left as it was');
  });

  test('writes into the buffer it is given when that is big enough', () => {
    const lf = Buffer.from('a line\n'.repeat(20));
    const into = Buffer.alloc(2 * lf.length + 1);
    const out = stuffPiece(lf, true, false, into);
    assert.equal(out.buffer, into.buffer);
    assert.deepEqual(out, Buffer.from('a line\r\n'.repeat(20)));
    const small = Buffer.alloc(10);
    const other = stuffPiece(lf, true, false, small);
    assert.notEqual(other.buffer, small.buffer, 'too small: a new buffer');
    assert.deepEqual(other, out);
  });

  test('the state crosses pieces: a CR at the end of one, a dot at the start of the next', () => {
    const stuffing = new DotStuffing();
    const first = stuffing.push(Buffer.from(`${'x'.repeat(70)}\r`));
    const second = stuffing.push(Buffer.from(`\n.${'y'.repeat(70)}\n`));
    assert.deepEqual(
      Buffer.concat([first, second]),
      Buffer.from(`${'x'.repeat(70)}\r\n..${'y'.repeat(70)}\r\n`),
    );
  });

  test(`a chunk over ${WASM_PIECE_BYTES} bytes is done in pieces, with the same result`, () => {
    const line = Buffer.from(`.${'z'.repeat(70)}\n`);
    const big = Buffer.concat(
      Array.from({ length: Math.ceil((2.5 * WASM_PIECE_BYTES) / line.length) }, () => line),
    );
    const whole = stuff([big]);
    assert.deepEqual(whole, stuff(cut(big, 65_536)));
    assert.equal(whole.length, big.length + 2 * (big.length / line.length));
  });

  test('without WebAssembly (node --jitless) the JavaScript path gives the same bytes', () => {
    const { command, args } = nodeScript('../../../../src/pop3/dot-stuffer.js', import.meta.url);
    const module = args.pop() ?? '';
    const script = `
      import { DotStuffing } from ${JSON.stringify(new URL(`file://${module}`).href)};
      import { hasWasmStuffing } from ${JSON.stringify(new URL(`file://${module.replace(/dot-stuffer\.(ts|js)$/, 'wasm/stuffing.$1')}`).href)};
      const s = new DotStuffing();
      const out = Buffer.concat([s.push(Buffer.from('.a line\\n'.repeat(100))), s.end()]);
      process.stdout.write(JSON.stringify({ wasm: hasWasmStuffing(), out: out.toString('base64') }));`;
    const child = spawnSync(command, ['--jitless', ...args, '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
    const result = JSON.parse(child.stdout) as { wasm: boolean; out: string };
    assert.equal(result.wasm, false);
    assert.deepEqual(Buffer.from(result.out, 'base64'), Buffer.from('..a line\r\n'.repeat(100)));
  });

  test('the generated module is up to date with stuffing.wat', () => {
    const repo = fileURLToPath(
      new URL(import.meta.url.includes('/build/') ? '../../../../../' : '../../../../', import.meta.url),
    );
    const child = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], {
      cwd: repo,
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
  });
});
