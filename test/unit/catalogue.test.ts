// Every reply text lives in the catalogue (src/pop3/text/), one per language (RFC 6856 LANG): a
// text written anywhere else would reach a Spanish session in English. These tests read the source.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { en } from '../../src/pop3/text/en.js';
import { es } from '../../src/pop3/text/es.js';
import { LANGUAGES } from '../../src/pop3/text/index.js';

const ROOT = new URL(import.meta.url.includes('/build/') ? '../../../' : '../../', import.meta.url);

async function sources(): Promise<{ path: string; text: string }[]> {
  const names = (await readdir(new URL('src/', ROOT), { recursive: true })).filter((f) => f.endsWith('.ts'));
  return Promise.all(
    names.sort().map(async (name) => ({
      path: `src/${name}`,
      text: await readFile(new URL(`src/${name}`, ROOT), 'utf8'),
    })),
  );
}

/** A string or template literal. */
const LITERAL = String.raw`('[^'\n]*'|"[^"\n]*"|\x60[^\x60]*\x60)`;
/** Whether a literal holds a word (two lower-case letters) outside its `${}`: a text, not `+OK ` or `\r\n`. */
const isWordy = (literal: string): boolean => /[a-z]{2}/.test(literal.replace(/\$\{[^}]*\}/g, ''));

/** Where a text reaches the client: a reply, an error that becomes one, an ending, a refusal. */
const SINKS = [
  String.raw`reply\.(?:ok|err|lines|listing|body|write|writeNow)\(\s*`,
  String.raw`new (?:Pop3Error|ProtocolError|SaslError|MessageGoneError)\(\s*`,
  String.raw`(?:failLogin\([^;]*?,\s*|\.end\(\s*|shutdown\(\s*|startTls\(\s*|#refuse\([^;]*?,\s*)`,
];
const AT_SINK = new RegExp(`(?:${SINKS.join('|')})${LITERAL}`, 'g');
const textsAtSinks = (code: string): string[] =>
  [...code.matchAll(AT_SINK)].filter((m) => isWordy(m[1] ?? '')).map((m) => m[0]);

test('no reply text is written in src/pop3 outside the catalogue (src/pop3/text/)', async () => {
  const files = (await sources()).filter(
    (f) => f.path.startsWith('src/pop3/') && !f.path.startsWith('src/pop3/text/'),
  );
  assert.ok(files.length > 40, 'src/pop3 was read');
  const found = files.flatMap((f) =>
    textsAtSinks(f.text).map((m) => `${f.path}: ${m.replaceAll('\n', ' ').slice(0, 120)}`),
  );
  assert.deepEqual(found, []);
});

test('the scan finds a text written at a reply or error in the ways code does it', () => {
  for (const line of [
    "await session.reply.ok('send PASS');",
    'await session.reply.err(`message ${n} gone`, RespCode.sysTemp);',
    "throw new Pop3Error('login too soon', RespCode.loginDelay);",
    'throw new ProtocolError(\n      `unknown command ${verb}`);',
    "throw new SaslError('malformed message');",
    "return failLogin(session, method, username, 'invalid user name or password');",
    "this.channel.end('maildrop lock lost');",
    "conn.shutdown('server shutting down');",
    "this.#refuse(socket, kind, ip, 'server shutting down');",
  ]) {
    assert.equal(textsAtSinks(line).length, 1, line);
  }
  for (const line of [
    "await session.reply.ok(session.say('sendPass'));",
    'await session.reply.write(`+ ${data.toString("base64")}\\r\\n`);',
    'socket.end(`-ERR [SYS/TEMP] ${refusal}\\r\\n`);',
    "throw textError('noSuchMessage', [count]);",
  ]) {
    assert.equal(textsAtSinks(line).length, 0, line);
  }
});

test('every Pop3Error thrown outside the engine names its catalogue text', async () => {
  const files = (await sources()).filter(
    (f) => !f.path.startsWith('src/pop3/') && f.path !== 'src/errors.ts',
  );
  const calls = files.flatMap((f) =>
    [...f.text.matchAll(/new Pop3Error\(([\s\S]*?)\);/g)].map((m) => ({ path: f.path, call: m[0] })),
  );
  assert.ok(calls.length >= 8, 'the store and the authenticators were read');
  const untexted = calls.filter((c) => !/text: '[A-Za-z]+'/.test(c.call)).map((c) => `${c.path}: ${c.call}`);
  assert.deepEqual(untexted, []);
});

test('every text of the catalogue is used by the code', async () => {
  const code = (await sources())
    .filter((f) => !f.path.startsWith('src/pop3/text/'))
    .map((f) => f.text)
    .join('\n');
  const unused = Object.keys(en).filter((key) => !new RegExp(`['.]${key}\\b`).test(code));
  assert.deepEqual(unused, []);
});

test('every language has every text, and Spanish words each one differently from English', () => {
  for (const { catalogue } of LANGUAGES)
    assert.deepEqual(Object.keys(catalogue).sort(), Object.keys(en).sort());
  const sample = (f: (...args: never[]) => string): string =>
    (f as (...args: unknown[]) => string)(...Array.from({ length: f.length }, () => 2));
  const same = (Object.keys(en) as (keyof typeof en)[]).filter((key) => sample(en[key]) === sample(es[key]));
  assert.deepEqual(same, []);
  // Spanish with its accents, as UTF-8: not an ASCII transliteration.
  assert.match(es.languages(), /idiomas/);
  assert.match(es.lineTooLong(), /línea/);
  assert.match(es.signingOffLeft(2), /quedan 2 mensajes/);
  assert.match(es.signingOffLeft(1), /queda 1 mensaje\)/);
});
