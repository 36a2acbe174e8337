/**
 * Cuts `bytes` at the given offsets (each taken modulo its length + 1, then sorted); a repeated
 * offset makes an empty chunk. For tests that feed the same bytes in every possible split.
 */
export function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const offsets = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of [...offsets, bytes.length]) {
    chunks.push(bytes.subarray(from, at));
    from = at;
  }
  return chunks;
}
