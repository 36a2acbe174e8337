import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nameList } from '../../../src/monitor/name-list.js';
import { MAX_DLEN } from '../../../src/monitor/protocol/messages.js';

interface Page {
  readonly count: number;
  readonly names: readonly string[];
  readonly isTruncated: boolean;
}
const read = (data: Buffer): Page => JSON.parse(data.toString('utf8')) as Page;

test('the names in byte order; empty DATA and the original one 0x00 both start at the first', () => {
  for (const after of [Buffer.alloc(0), Buffer.from([0])]) {
    assert.deepEqual(read(nameList(['bob', 'Zed', 'alice'], after)), {
      count: 3,
      names: ['Zed', 'alice', 'bob'],
      isTruncated: false,
    });
  }
  assert.deepEqual(read(nameList([], Buffer.alloc(0))), { count: 0, names: [], isTruncated: false });
});

test('a list longer than DLEN allows comes in pages that fit, each resuming after the last name', () => {
  const all = Array.from({ length: 3000 }, (_, i) => `user-${String(i).padStart(5, '0')}-${'x'.repeat(40)}`);
  const seen: string[] = [];
  let after = Buffer.alloc(0);
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10, 'the pages end');
    const data = nameList([...all].reverse(), after);
    assert.ok(data.length <= MAX_DLEN, `a page fits DLEN (${data.length})`);
    const page = read(data);
    assert.equal(page.count, all.length);
    assert.ok(page.names.length > 0);
    seen.push(...page.names);
    if (!page.isTruncated) break;
    after = Buffer.from(page.names.at(-1) ?? '');
  }
  assert.deepEqual(seen, all);
});
