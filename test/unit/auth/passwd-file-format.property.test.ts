import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parsePasswdFile, type ParsedPasswdFile } from '../../../src/auth/passwd-file-format.js';
import { isValidUserName } from '../../../src/user.js';

// Hostile input (issue 6): whatever a users file holds, parsePasswdFile returns; every line it
// cannot use is reported with its number, every user it returns has a safe name and a usable
// password, and a well-formed file gives back exactly the users written into it.

/** The file's lines as the parser numbers them: split at LF, one trailing CR removed. */
function linesOf(text: string): string[] {
  return text.split('\n').map((line) => line.replace(/\r$/, ''));
}

const isSkipped = (line: string): boolean => line.trim() === '' || line.startsWith('#');

/** What must hold for any input at all. */
function assertSound(text: string, parsed: ParsedPasswdFile): void {
  const lines = linesOf(text);
  let previous = 0;
  for (const problem of parsed.problems) {
    assert.ok(Number.isInteger(problem.line), `line ${problem.line} is a whole number`);
    assert.ok(problem.line >= 1 && problem.line <= lines.length, `line ${problem.line} is in the file`);
    assert.ok(problem.line > previous, 'one problem per line, in file order');
    previous = problem.line;
    assert.ok(
      !isSkipped(lines[problem.line - 1] ?? ''),
      `line ${problem.line} is neither blank nor a comment`,
    );
    assert.equal(typeof problem.message, 'string');
    assert.notEqual(problem.message, '');
  }
  // Nothing is dropped silently: every line that is neither blank nor a comment is a user or a problem.
  const meaningful = lines.filter((line) => !isSkipped(line)).length;
  assert.equal(parsed.users.size + parsed.problems.length, meaningful, 'each line is a user or a problem');
  for (const [name, stored] of parsed.users) {
    assert.ok(isValidUserName(name), `user name ${JSON.stringify(name)} is valid`);
    assert.ok(
      lines.some((line) => line.startsWith(`${name}:`)),
      `user ${name} comes from a line of the file`,
    );
    assert.equal(stored.scheme.problem(stored.data), undefined, `the password of ${name} is usable`);
  }
}

/** Pieces that mean something to the parser, or to a path, or to a terminal. */
const TOKENS = [
  '\0',
  '\r',
  '\n',
  '\r\n',
  ':',
  '::',
  '#',
  ' ',
  '\t',
  '{',
  '}',
  '{PLAIN}',
  '{plain}',
  '{CLEARTEXT}',
  '{SSHA256}',
  '{PBKDF2}$1$',
  '{SHA512-CRYPT}$6$',
  '{BLF-CRYPT}$2y$',
  '{ARGON2ID}$argon2id$v=19$',
  '{SCRAM-SHA-256}',
  '{NOPE}',
  'alice',
  'bob',
  '.',
  '..',
  '../',
  '/',
  '\\',
  '@',
  '+',
  '-',
  'é',
  'ß',
  '😀',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '\ud800',
  '\u0085',
  '\x1b[31m',
  'AAAA',
  '====',
];

const tokenText = fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }).map((t) => t.join(''));

/** A line of many thousands of characters: one token or run repeated. */
const longLine = fc
  .tuple(
    fc.constantFrom('', 'alice:', 'alice:{PLAIN}', 'a:{SSHA256}', 'a:{SCRAM-SHA-256}', 'a:{PBKDF2}$1$', '#'),
    fc.constantFrom('A', 'a', ':', '$', '{', '\0', '\r', '😀', 'ab/', '=', ' '),
    fc.integer({ min: 1_000, max: 200_000 }),
    fc.constantFrom('', '\n', '\r\n', '\nbob:{PLAIN}x\n', '!'),
  )
  .map(([head, unit, count, tail]) => head + unit.repeat(Math.ceil(count / unit.length)) + tail);

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.string({ unit: fc.constantFrom('a', ':', '\n', '\r', '#', '{', '}', ' ', '\0', 'P'), maxLength: 300 }),
  tokenText,
  fc
    .array(fc.oneof(tokenText, fc.string({ unit: 'binary', maxLength: 40 })), { maxLength: 30 })
    .map((l) => l.join('\n')),
);

describe('parsePasswdFile on hostile input', () => {
  test('any text: a result, problems on real lines, every user valid and usable', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        assertSound(text, parsePasswdFile(text));
      }),
      { numRuns: 1000 },
    );
  });

  test('very long lines, mixed with ordinary ones', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(longLine, tokenText), { minLength: 1, maxLength: 4 }), (parts) => {
        const text = parts.join('\n');
        assertSound(text, parsePasswdFile(text));
      }),
      { numRuns: 60 },
    );
  });

  test('a hostile user name never becomes a user; a valid one does', () => {
    const name = fc
      .oneof(
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.string({ unit: 'grapheme', maxLength: 80 }),
        tokenText,
        fc.stringMatching(/^[A-Za-z0-9._+@-]{0,70}$/),
      )
      // The name is what comes before the first colon, on one line.
      .map((n) => n.replace(/[:\n]/g, ''));
    fc.assert(
      fc.property(name, fc.constantFrom('\n', '\r\n', ''), (userName, end) => {
        const text = `${userName}:{PLAIN}secret${end}`;
        const parsed = parsePasswdFile(text);
        assertSound(text, parsed);
        if (userName.startsWith('#')) {
          // A comment: neither a user nor a problem.
          assert.deepEqual([parsed.users.size, parsed.problems.length], [0, 0]);
        } else if (isValidUserName(userName)) {
          assert.deepEqual([...parsed.users.keys()], [userName]);
          assert.equal(parsed.users.get(userName)?.data, 'secret');
          assert.deepEqual(parsed.problems, []);
        } else {
          assert.equal(parsed.users.size, 0);
          assert.deepEqual(
            parsed.problems.map((p) => p.line),
            [1],
          );
        }
      }),
      { numRuns: 1000 },
    );
  });
});

// Well-formed files, generated with the expected users alongside.

const CRYPT64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'.split('');
const cryptChars = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...CRYPT64), minLength: min, maxLength: max });
const bytesBase64 = (min: number, max: number): fc.Arbitrary<string> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString('base64'));
/** Unpadded canonical base64, as PHC strings carry it. */
const phcBase64 = (min: number, max: number): fc.Arbitrary<string> =>
  fc
    .uint8Array({ minLength: min, maxLength: max })
    .map((b) => Buffer.from(b).toString('base64').replace(/=+$/, ''));

interface Entry {
  readonly field: string;
  /** The canonical scheme name and the data the parser must give back. */
  readonly scheme: string;
  readonly data: string;
}

const entry = (label: string, scheme: string) => (data: string) => ({
  field: `{${label}}${data}`,
  scheme,
  data,
});

const passwordEntry: fc.Arbitrary<Entry> = fc.oneof(
  // Plain text: anything but the field separator and line ends, any spelling of the scheme.
  fc
    .tuple(
      fc.constantFrom('PLAIN', 'plain', 'Plain', 'CLEARTEXT', 'cleartext', 'CLEAR'),
      // Control characters (but tab) make a line unusable; colons end the password field.
      // eslint-disable-next-line no-control-regex
      fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/[\x00-\x08\x0a-\x1f\x7f:]/g, '')),
    )
    .map(([label, data]) => entry(label, 'PLAIN')(data)),
  bytesBase64(33, 80).map(entry('SSHA256', 'SSHA256')),
  bytesBase64(65, 120).map(entry('ssha512', 'SSHA512')),
  fc
    .tuple(
      fc.string({ unit: fc.constantFrom(...CRYPT64), minLength: 1, maxLength: 24 }),
      fc.integer({ min: 1, max: 2_000_000 }), // up to PBKDF2_MAX_ROUNDS
      fc.string({
        unit: fc.constantFrom(...'0123456789abcdefABCDEF'.split('')),
        minLength: 40,
        maxLength: 40,
      }),
    )
    .map(([salt, rounds, hex]) => entry('PBKDF2', 'PBKDF2')(`$1$${salt}$${rounds}$${hex}`)),
  fc
    .tuple(fc.option(fc.integer({ min: 1000, max: 1_000_000 })), cryptChars(1, 16), cryptChars(86, 86))
    .map(([rounds, salt, hash]) =>
      entry(
        'SHA512-CRYPT',
        'SHA512-CRYPT',
      )(`$6$${rounds === null ? '' : `rounds=${rounds}$`}${salt}$${hash}`),
    ),
  fc
    .tuple(fc.integer({ min: 4, max: 16 }), fc.constantFrom('2a', '2b', '2y'), cryptChars(53, 53))
    .map(([cost, id, rest]) =>
      entry('BLF-CRYPT', 'BLF-CRYPT')(`$${id}$${String(cost).padStart(2, '0')}$${rest}`),
    ),
  fc
    .tuple(
      fc.integer({ min: 8, max: 1_048_576 }),
      fc.integer({ min: 1, max: 100 }),
      phcBase64(8, 48),
      phcBase64(5, 64),
    )
    .map(([memory, time, salt, hash]) =>
      entry('ARGON2ID', 'ARGON2ID')(`$argon2id$v=19$m=${memory},t=${time},p=1$${salt}$${hash}`),
    ),
  fc.constantFrom(
    // From `doveadm pw` (Dovecot 2.3), as in passwd-file.test.ts.
    entry('SSHA256', 'SSHA256')('zJsnE4H12XgMj2ZbR4FxvQdugjnRm42LSzzugEEBFO6fLp35'),
    entry('PBKDF2', 'PBKDF2')('$1$RkbWVlYhiOWgbzdp$5000$8a334b406cedb886aca4011ba3a08df76b00a6c9'),
  ),
);

const userName = fc.stringMatching(/^[A-Za-z0-9_+@-][A-Za-z0-9._+@-]{0,63}$/);

type FileLine =
  | { readonly kind: 'user'; readonly name: string; readonly entry: Entry; readonly extra: string }
  | { readonly kind: 'other'; readonly text: string };

const otherLine: fc.Arbitrary<FileLine> = fc
  .oneof(
    fc.constantFrom('', ' ', '\t', '  \t '),
    fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `#${s.replace(/\n/g, '')}`),
  )
  .map((text) => ({ kind: 'other', text }));

describe('parsePasswdFile on well-formed files', () => {
  test('a generated users file parses back to its users; a repeated name keeps the first', () => {
    const names = fc.uniqueArray(userName, { minLength: 1, maxLength: 8 });
    const file = names.chain((pool) =>
      fc.tuple(
        fc.array(
          fc.oneof(
            {
              weight: 3,
              arbitrary: fc
                .tuple(
                  fc.constantFrom(...pool),
                  passwordEntry,
                  // Dovecot's extra fields (uid, gid, home, ...), which Poplar ignores.
                  fc.oneof(
                    fc.constant(''),
                    fc.constantFrom(
                      ':1000:1000::/home/x',
                      '::::::',
                      ':1000:1000::/home/x::userdb_quota_rule=*:storage=1G',
                    ),
                    fc
                      .string({ unit: 'binary', maxLength: 30 })
                      // eslint-disable-next-line no-control-regex
                      .map((s) => `:${s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '')}`),
                  ),
                )
                .map(([name, e, extra]): FileLine => ({ kind: 'user', name, entry: e, extra })),
            },
            { weight: 1, arbitrary: otherLine },
          ),
          { maxLength: 25 },
        ),
        fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }),
        fc.boolean(),
      ),
    );
    fc.assert(
      fc.property(file, ([lines, crlf, hasFinalEnd]) => {
        const text = lines
          .map((line, i) => {
            const content =
              line.kind === 'user' ? `${line.name}:${line.entry.field}${line.extra}` : line.text;
            const isLast = i === lines.length - 1;
            return content + (isLast && !hasFinalEnd ? '' : crlf[i] === true ? '\r\n' : '\n');
          })
          .join('');
        const expected = new Map<string, { scheme: string; data: string }>();
        const duplicateLines: number[] = [];
        lines.forEach((line, i) => {
          if (line.kind !== 'user') return;
          if (expected.has(line.name)) duplicateLines.push(i + 1);
          else expected.set(line.name, { scheme: line.entry.scheme, data: line.entry.data });
        });
        const parsed = parsePasswdFile(text);
        assertSound(text, parsed);
        assert.deepEqual(
          parsed.problems.map((p) => p.line),
          duplicateLines,
          'the only problems are repeated names',
        );
        assert.deepEqual(
          [...parsed.users].map(([name, stored]) => [name, stored.scheme.name, stored.data]),
          [...expected].map(([name, e]) => [name, e.scheme, e.data]),
        );
      }),
      { numRuns: 500 },
    );
  });
});
