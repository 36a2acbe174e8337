import { WASM_BASE64 } from './stuffing-wasm.js';

/**
 * The byte-stuffing loop of {@link DotStuffing} in WebAssembly (`stuffing.wat`): it scans 16 bytes
 * at a time and copies line by line without a call per line, about four times the speed of the
 * JavaScript path on LF-ended text (the common case: MTAs deliver LF line ends, and each needs a
 * CR). The module's memory holds one piece in and its result out; it grows to fit the largest
 * piece, which {@link WASM_PIECE_BYTES} bounds.
 */

// The parts of the WebAssembly global used here: @types/node 20 does not declare it (it is in the DOM lib).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
};

interface StuffingModule {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  stuff(input: number, length: number, output: number, flags: number): number;
}

/** Largest piece stuffed in one call; a longer chunk is cut (the module's memory stays under ~3.2 MB). */
export const WASM_PIECE_BYTES = 1 << 20;

let loaded: StuffingModule | null | undefined;

function load(): StuffingModule | null {
  if (loaded !== undefined) return loaded;
  try {
    const module = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
    loaded = new WebAssembly.Instance(module).exports as StuffingModule;
  } catch {
    loaded = null; // no WebAssembly here (node --jitless, say): the JavaScript path serves
  }
  return loaded;
}

/** Whether the WebAssembly path is available in this process. */
export function hasWasmStuffing(): boolean {
  return load() !== null;
}

/**
 * Stuffs `chunk` (1 to {@link WASM_PIECE_BYTES} bytes): `atLineStart` when its first byte starts a
 * line, `prevCR` when the byte before it was a CR. Returns `chunk` itself when nothing changes,
 * else the result: in `into` when given and big enough (2 * length + 1 always is), in a new buffer
 * otherwise. Call only when {@link hasWasmStuffing}.
 */
export function stuffPiece(chunk: Buffer, atLineStart: boolean, prevCR: boolean, into?: Buffer): Buffer {
  const wasm = load();
  if (wasm === null) throw new Error('WebAssembly byte-stuffing is not available');
  const length = chunk.length;
  // Input at 0, output after it (16-byte aligned) with room for 2 * length + 1 bytes and 16 spare.
  const output = (length + 31) & ~15;
  const needed = output + 2 * length + 32;
  const memory = wasm.memory;
  if (memory.buffer.byteLength < needed) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / 65_536));
  const bytes = new Uint8Array(memory.buffer);
  bytes.set(chunk, 0);
  const written = wasm.stuff(0, length, output, (atLineStart ? 1 : 0) | (prevCR ? 2 : 0));
  // Stuffing only ever adds bytes: as many out as in means nothing changed.
  if (written === length) return chunk;
  const result =
    into !== undefined && into.length >= written ? into.subarray(0, written) : Buffer.allocUnsafe(written);
  result.set(bytes.subarray(output, output + written));
  return result;
}
