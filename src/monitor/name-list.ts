import { MAX_DLEN } from './protocol/messages.js';

/**
 * GET 0x21 (users) and 0x22 (admins): the names in byte order, as a UTF-8 JSON document
 * `{"count", "names", "isTruncated"}` that fits DLEN. DATA is where to resume: empty (or the
 * original client's single 0x00) starts at the first name; a name starts after it, so a client
 * asks again with the last name it got while `isTruncated` is true. Never a secret, only names.
 */
export function nameList(names: Iterable<string>, after: Buffer): Buffer {
  const from =
    after.length === 0 || (after.length === 1 && after[0] === 0) ? undefined : after.toString('utf8');
  const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const rest = from === undefined ? sorted : sorted.filter((n) => Buffer.compare(Buffer.from(n), after) > 0);
  const page: string[] = [];
  // The document without names, with room for the longest count and `false` turned `true`.
  let bytes = Buffer.byteLength(JSON.stringify({ count: sorted.length, names: [], isTruncated: false })) + 1;
  for (const name of rest) {
    const cost = Buffer.byteLength(JSON.stringify(name)) + (page.length === 0 ? 0 : 1);
    if (bytes + cost > MAX_DLEN) break;
    bytes += cost;
    page.push(name);
  }
  return Buffer.from(
    JSON.stringify({ count: sorted.length, names: page, isTruncated: page.length < rest.length }),
  );
}
