import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_SCHEME,
  findScheme,
  hashPassword,
  parseStoredPassword,
  schemeNames,
} from '../../../../src/auth/passwords/registry.js';
import { parsed, verifies } from '../../../helpers/stored-password.js';

// Vectors produced by Dovecot 2.3's own tool on this machine (LANG=C.UTF-8, so passwords are
// UTF-8); each comment is the command that printed the line.
const UMLAUT = 'pässwörd';
const CJK = '密码🔑';
const VECTORS: readonly { password: string; field: string; command: string }[] = [
  {
    command: "doveadm pw -s PBKDF2 -p 'pässwörd'",
    password: UMLAUT,
    field: '{PBKDF2}$1$RkbWVlYhiOWgbzdp$5000$8a334b406cedb886aca4011ba3a08df76b00a6c9',
  },
  {
    command: "doveadm pw -s PBKDF2 -p 'secret'",
    password: 'secret',
    field: '{PBKDF2}$1$e/t4W5RmCpUYWtoz$5000$174837bb2f81dc1f7cf7a179b3ed761101b6f93c',
  },
  {
    command: "doveadm pw -s PBKDF2 -p '密码🔑'",
    password: CJK,
    field: '{PBKDF2}$1$gptoMhaVKneD.Qdo$5000$601ca361c9f2a0c81a4abd8a92e46146beeca6b6',
  },
  {
    command: "doveadm pw -s PBKDF2 -r 1 -p 'secret'",
    password: 'secret',
    field: '{PBKDF2}$1$eEPvIQMadNEEKPP0$1$b634a8860b7251b0d00f9f41aa425ba5c41a4448',
  },
  {
    command: "doveadm pw -s PBKDF2 -r 12345 -p 'secret'",
    password: 'secret',
    field: '{PBKDF2}$1$SMagF6ZUnEcaQs2b$12345$77b3b21b14f633418419255c417ddb8e0451ab90',
  },
  {
    command: "doveadm pw -s SSHA256 -p 'pässwörd'",
    password: UMLAUT,
    field: '{SSHA256}v0yN7oCEPhaKxWz/g7zXdg3xwjuj30n/NhEDcZFBpCmhs251',
  },
  {
    command: "doveadm pw -s SSHA256 -p 'secret'",
    password: 'secret',
    field: '{SSHA256}zJsnE4H12XgMj2ZbR4FxvQdugjnRm42LSzzugEEBFO6fLp35',
  },
  {
    command: "doveadm pw -s SSHA256 -p '密码🔑'",
    password: CJK,
    field: '{SSHA256}T13AdqEeegRdkobs3tdyFvNv1ZCJexeqJ93xkzOjx9waBogk',
  },
  {
    command: "doveadm pw -s SSHA256 -p ''",
    password: '',
    field: '{SSHA256}WyF0ZJ4MbOtyo68TukMIvy9HKG2VTxO4Ode/JPQ8Oq04XZMG',
  },
  {
    command: "doveadm pw -s SSHA512 -p 'pässwörd'",
    password: UMLAUT,
    field:
      '{SSHA512}MBzZaJQP8UxzkVl15ltUc2QnYN4V+4Sg0wO1gUaYmeA5ezqtLP2bZZ0MCnT76uccbfzPDpBQsx+KEazyKkVbJ7TNAGo=',
  },
  {
    command: "doveadm pw -s SSHA512 -p 'secret'",
    password: 'secret',
    field:
      '{SSHA512}Ayf0hTXJGk+3oYs0mQ//Nlnqc3D1McHvE5PxbL/8SDPvW9Xjyt2HzzNIWWbg3jxRMQ39WQL4XYyXAfo3tV3nVqqKjfM=',
  },
  {
    command: "doveadm pw -s SSHA512 -p '密码🔑'",
    password: CJK,
    field:
      '{SSHA512}5MiuTfCRqS8VW2cKAL+Gag+WhWluFoA5adiWtRTLaZK94Krk4vRoxfhCqvAw/MBy7G5Hjv06K5dUfWt/Pz7D9nebyt0=',
  },
  { command: "doveadm pw -s PLAIN -p 'pässwörd'", password: UMLAUT, field: '{PLAIN}pässwörd' },
  { command: "doveadm pw -s CLEARTEXT -p 'pässwörd'", password: UMLAUT, field: '{CLEARTEXT}pässwörd' },
];

const WRONG = [
  '',
  'Secret',
  'secret ',
  'passwörd',
  'pässwörd\n',
  'pa\u0308sswo\u0308rd',
  '密码',
  'x'.repeat(1000),
];

describe('Dovecot vectors', () => {
  for (const { command, password, field } of VECTORS) {
    test(`${command}: right password verifies, wrong ones do not`, async () => {
      assert.equal(await verifies(field, password), true);
      for (const wrong of WRONG.filter((w) => w !== password)) {
        assert.equal(await verifies(field, wrong), false, `wrong password ${JSON.stringify(wrong)}`);
      }
    });
  }

  test('passwords are compared as UTF-8 bytes, without Unicode normalisation (as Dovecot does)', async () => {
    const nfd = UMLAUT.normalize('NFD');
    assert.notEqual(nfd, UMLAUT);
    assert.equal(await verifies(VECTORS[0]?.field ?? '', nfd), false);
    assert.equal(await verifies('{PLAIN}pässwörd', nfd), false);
  });
});

describe('parseStoredPassword', () => {
  test('{PLAIN} keeps the rest of the field as the password, colons and braces included', () => {
    const { scheme, data } = parsed('{PLAIN}a{b}:c d');
    assert.equal(scheme.name, 'PLAIN');
    assert.equal(scheme.isPlaintext, true);
    assert.equal(data, 'a{b}:c d');
  });

  test('{CLEARTEXT} and {CLEAR} are aliases of {PLAIN}', () => {
    // doveadm pw -s CLEAR -p 'secret' prints {CLEAR}secret
    for (const field of ['{CLEARTEXT}secret', '{CLEAR}secret']) {
      const { scheme, data } = parsed(field);
      assert.equal(scheme.name, 'PLAIN');
      assert.equal(data, 'secret');
    }
  });

  test('scheme names are case-insensitive', async () => {
    assert.equal(parsed('{plain}x').scheme.name, 'PLAIN');
    assert.equal(parsed('{Cleartext}x').scheme.name, 'PLAIN');
    assert.equal(await verifies('{ssha256}zJsnE4H12XgMj2ZbR4FxvQdugjnRm42LSzzugEEBFO6fLp35', 'secret'), true);
  });

  test('hashed schemes are not plaintext', () => {
    for (const { field } of VECTORS.filter((v) => !/^\{(PLAIN|CLEARTEXT)\}/.test(v.field))) {
      assert.equal(parsed(field).scheme.isPlaintext, false, field);
    }
  });

  test('a field without {SCHEME} is refused', () => {
    for (const field of ['secret', '', '{}secret', '{PLAIN', 'x{PLAIN}y', ' {PLAIN}y', '{PLA IN}x']) {
      assert.equal(parseStoredPassword(field), 'password must start with {SCHEME}', JSON.stringify(field));
    }
  });

  test('an unknown scheme is refused, naming it', () => {
    assert.equal(parseStoredPassword('{MD5-CRYPT}$1$abc$def'), 'unsupported password scheme {MD5-CRYPT}');
    assert.equal(parseStoredPassword('{des-crypt}Ab01234567890'), 'unsupported password scheme {DES-CRYPT}');
    assert.equal(parseStoredPassword('{SSHA256.HEX}00'), 'unsupported password scheme {SSHA256.HEX}');
    assert.equal(parseStoredPassword('{SHA256}x'), 'unsupported password scheme {SHA256}');
    assert.equal(parseStoredPassword('{ARGON2D}x'), 'unsupported password scheme {ARGON2D}');
  });

  test('malformed data is refused, naming the scheme', () => {
    const hex40 = 'a'.repeat(40);
    const cases: [string, string][] = [
      ['{PBKDF2}', 'PBKDF2'],
      ['{PBKDF2}garbage', 'PBKDF2'],
      [`{PBKDF2}$1$salt$5000$${'a'.repeat(39)}`, 'PBKDF2'],
      [`{PBKDF2}$1$salt$5000$${'a'.repeat(41)}`, 'PBKDF2'],
      [`{PBKDF2}$1$salt$5000$${'g'.repeat(40)}`, 'PBKDF2'],
      [`{PBKDF2}$2$salt$5000$${hex40}`, 'PBKDF2'],
      [`{PBKDF2}$1$$5000$${hex40}`, 'PBKDF2'],
      [`{PBKDF2}$1$salt$0$${hex40}`, 'PBKDF2'],
      [`{PBKDF2}$1$salt$-5$${hex40}`, 'PBKDF2'],
      [`{PBKDF2}$1$salt$$${hex40}`, 'PBKDF2'],
      ['{SSHA256}', 'SSHA256'],
      ['{SSHA256}not base64!', 'SSHA256'],
      // 32 bytes: a SHA-256 digest with no salt after it
      [`{SSHA256}${Buffer.alloc(32, 1).toString('base64')}`, 'SSHA256'],
      // 64 bytes: a SHA-512 digest with no salt after it
      [`{SSHA512}${Buffer.alloc(64, 1).toString('base64')}`, 'SSHA512'],
      ['{SSHA512}zJsnE4H12XgMj2ZbR4FxvQdugjnRm42LSzzugEEBFO6fLp35', 'SSHA512'], // too short for SHA-512
    ];
    for (const [field, scheme] of cases) {
      assert.equal(parseStoredPassword(field), `malformed {${scheme}} password`, field);
    }
  });

  test('verify() of malformed data is false, not a throw', async () => {
    for (const name of ['PBKDF2', 'SSHA256', 'SSHA512']) {
      const scheme = findScheme(name);
      assert.ok(scheme !== undefined);
      assert.equal(await scheme.verify('secret', 'garbage'), false, name);
      assert.equal(await scheme.verify('secret', ''), false, name);
    }
  });
});

describe('hashPassword', () => {
  test('the known schemes', () => {
    assert.deepEqual(schemeNames().sort(), [
      'ARGON2I',
      'ARGON2ID',
      'BLF-CRYPT',
      'CRYPT',
      'PBKDF2',
      'PLAIN',
      'SCRAM-SHA-256',
      'SHA256-CRYPT',
      'SHA512-CRYPT',
      'SSHA',
      'SSHA256',
      'SSHA512',
    ]);
    assert.equal(DEFAULT_SCHEME, 'PBKDF2');
  });

  for (const scheme of ['PLAIN', 'CLEARTEXT', 'PBKDF2', 'SSHA', 'SSHA256', 'SSHA512']) {
    test(`round trip: ${scheme}`, async () => {
      for (const password of ['secret', UMLAUT, CJK, '', 'with space and : colon']) {
        const field = await hashPassword(password, scheme);
        assert.equal(await verifies(field, password), true, `${scheme} ${JSON.stringify(password)}`);
        assert.equal(await verifies(field, `${password}x`), false);
      }
    });
  }

  test('the field is {SCHEME}data in Dovecot form', async () => {
    assert.equal(await hashPassword('pw', 'PLAIN'), '{PLAIN}pw');
    assert.equal(await hashPassword('pw', 'cleartext'), '{PLAIN}pw');
    assert.match(await hashPassword('pw'), /^\{PBKDF2\}\$1\$[^$]+\$100000\$[0-9a-f]{40}$/);
    assert.match(await hashPassword('pw', 'ssha256'), /^\{SSHA256\}[A-Za-z0-9+/]+={0,2}$/);
    const ssha512 = await hashPassword('pw', 'SSHA512');
    assert.match(ssha512, /^\{SSHA512\}[A-Za-z0-9+/]+={0,2}$/);
    assert.ok(Buffer.from(ssha512.slice('{SSHA512}'.length), 'base64').length > 64, 'digest plus salt');
  });

  test('salted schemes give a different field each time', async () => {
    for (const scheme of ['PBKDF2', 'SSHA256', 'SSHA512']) {
      assert.notEqual(await hashPassword('pw', scheme), await hashPassword('pw', scheme), scheme);
    }
  });

  test('an unknown scheme is refused, listing the known ones', async () => {
    await assert.rejects(hashPassword('pw', 'MD5'), /unknown scheme MD5; known: .*PBKDF2/);
  });
});
