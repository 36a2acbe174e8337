import { CR, LF } from '../message/octets.js';

/**
 * The part of a message that TOP sends (RFC 1939 section 7): the header, the blank line that ends
 * it, and then at most `bodyLines` lines of the body. A message without a blank line is all header
 * and is sent whole. Stops pulling from `source` as soon as the cut is reached, so `TOP n 0` on a
 * huge message reads only its head.
 */
export async function* topOfMessage(
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  bodyLines: number,
): AsyncGenerator<Buffer> {
  let inHeader = true;
  let remaining = bodyLines;
  let carried = 0; // bytes of the current line that arrived in earlier chunks
  let prevCR = false;
  for await (const chunk of source) {
    let lineStart = 0;
    let nl = chunk.indexOf(LF);
    while (nl !== -1) {
      const lineBytes = carried + (nl - lineStart);
      let cut = false;
      if (inHeader) {
        const beforeIsCR = nl > 0 ? chunk[nl - 1] === CR : prevCR;
        if (lineBytes === 0 || (lineBytes === 1 && beforeIsCR)) {
          inHeader = false;
          cut = remaining === 0;
        }
      } else {
        remaining -= 1;
        cut = remaining === 0;
      }
      if (cut) {
        yield chunk.subarray(0, nl + 1);
        return;
      }
      carried = 0;
      lineStart = nl + 1;
      nl = chunk.indexOf(LF, lineStart);
    }
    carried += chunk.length - lineStart;
    if (chunk.length > 0) prevCR = chunk[chunk.length - 1] === CR;
    yield chunk;
  }
}
