// Real clients against the SASL mechanisms: curl (CRAM-MD5, PLAIN, LOGIN, OAUTHBEARER, XOAUTH2;
// with and without --sasl-ir) and mpop (all six, SCRAM-SHA-256 through GNU SASL, which checks the
// server's signature). Skipped locally when a client is missing; a failure in CI (CI=true).
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { OAuthVerifier } from '../../src/auth/oauth/verifier.js';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { MECHANISMS, type SaslMechanismName } from '../../src/pop3/sasl/index.js';
import type { Pop3Server, Pop3ServerOptions } from '../../src/pop3/server.js';
import { requireBinary } from '../interop/require-binary.js';
import { clientEnv, describeRun, runClient, type ClientResult } from '../interop/run-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const USER = 'alice';
const PASSWORD = 'interop-Secret1';
const TOKEN = 'ya29.interop-token_1';
const verifier: OAuthVerifier = {
  verify: (token) =>
    Promise.resolve(token === TOKEN ? { ok: true, username: USER } : { ok: false, reason: 'invalid' }),
};

async function serve(
  t: TestContext,
  options: Partial<Pop3ServerOptions> = {},
): Promise<{ server: Pop3Server; port: number }> {
  return startServer(t, {
    authenticator: new StaticAuthenticator({ [USER]: PASSWORD }, { oauth: verifier }),
    mailboxes: { [USER]: ['Subject: x\r\n\r\nbody\r\n'] }, // 20 octets
    hostname: 'poplar.test',
    ...options,
  });
}

const succeeded = (server: Pop3Server, method: string): number =>
  server.stats.logins.get(method)?.succeeded ?? 0;

// ---- curl -------------------------------------------------------------------------------------

function curl(bin: string, work: string, port: number, args: readonly string[]): Promise<ClientResult> {
  return runClient(
    bin,
    [
      '-q',
      '--silent',
      '--show-error',
      '--verbose',
      '--max-time',
      '20',
      '--noproxy',
      '*',
      ...args,
      `pop3://127.0.0.1:${port}/`,
    ],
    { env: clientEnv(work) },
  );
}

const curlCases: {
  name: string;
  method: string;
  args: string[];
  authLine: RegExp;
  withoutOAuthBearer?: boolean;
}[] = [
  // curl's own choice, given a password: CRAM-MD5 before PLAIN and LOGIN (SCRAM it does not know).
  {
    name: 'default choice',
    method: 'CRAM-MD5',
    args: ['-u', `${USER}:${PASSWORD}`],
    authLine: /^> AUTH CRAM-MD5\r?$/m,
  },
  {
    name: 'AUTH=PLAIN',
    method: 'PLAIN',
    args: ['--login-options', 'AUTH=PLAIN', '-u', `${USER}:${PASSWORD}`],
    authLine: /^> AUTH PLAIN\r?$/m,
  },
  {
    name: 'AUTH=PLAIN --sasl-ir',
    method: 'PLAIN',
    args: ['--sasl-ir', '--login-options', 'AUTH=PLAIN', '-u', `${USER}:${PASSWORD}`],
    authLine: /^> AUTH PLAIN [A-Za-z0-9+/=]+\r?$/m,
  },
  {
    name: 'AUTH=LOGIN',
    method: 'LOGIN',
    args: ['--login-options', 'AUTH=LOGIN', '-u', `${USER}:${PASSWORD}`],
    authLine: /^> AUTH LOGIN\r?$/m,
  },
  {
    name: '--oauth2-bearer',
    method: 'OAUTHBEARER',
    args: ['-u', USER, '--oauth2-bearer', TOKEN],
    authLine: /^> AUTH OAUTHBEARER\r?$/m,
  },
  {
    name: '--oauth2-bearer --sasl-ir',
    method: 'OAUTHBEARER',
    args: ['--sasl-ir', '-u', USER, '--oauth2-bearer', TOKEN],
    authLine: /^> AUTH OAUTHBEARER [A-Za-z0-9+/=]+\r?$/m,
  },
  // curl takes OAUTHBEARER whenever it is offered, AUTH=XOAUTH2 or not: a server offering only XOAUTH2.
  {
    name: 'XOAUTH2',
    method: 'XOAUTH2',
    args: ['-u', USER, '--oauth2-bearer', TOKEN],
    authLine: /^> AUTH XOAUTH2\r?$/m,
    withoutOAuthBearer: true,
  },
  {
    name: 'XOAUTH2 --sasl-ir',
    method: 'XOAUTH2',
    args: ['--sasl-ir', '-u', USER, '--oauth2-bearer', TOKEN],
    authLine: /^> AUTH XOAUTH2 [A-Za-z0-9+/=]+\r?$/m,
    withoutOAuthBearer: true,
  },
];

for (const c of curlCases) {
  test(`curl ${c.name} logs in with ${c.method} and lists the message`, async (t) => {
    const bin = await requireBinary(t, 'curl');
    if (bin === undefined) return;
    const { server, port } = await serve(
      t,
      c.withoutOAuthBearer === true
        ? {
            saslMechanisms: MECHANISMS.filter((m) => m.name !== 'OAUTHBEARER').map(
              (m) => m.name as SaslMechanismName,
            ),
          }
        : {},
    );
    const result = await curl(bin, await tempDir(t), port, c.args);
    assert.equal(result.code, 0, describeRun('curl', result));
    assert.match(result.stderr, c.authLine);
    assert.equal(result.stdout.toString('latin1'), '1 20\r\n');
    assert.equal(succeeded(server, c.method), 1);
  });
}

for (const [name, args, exchange] of [
  ['a wrong password (CRAM-MD5)', ['-u', `${USER}:wrong`], /^> AUTH CRAM-MD5\r?$/m],
  // The JSON error challenge, which curl acknowledges with ^A (AQ==), then -ERR.
  [
    'a wrong token (OAUTHBEARER)',
    ['-u', USER, '--oauth2-bearer', 'forged'],
    /^< \+ eyJ[A-Za-z0-9+/=]+\r?\n> AQ==\r?$/m,
  ],
] as const) {
  test(`curl with ${name} gets "login denied"`, async (t) => {
    const bin = await requireBinary(t, 'curl');
    if (bin === undefined) return;
    const { port } = await serve(t);
    const result = await curl(bin, await tempDir(t), port, args);
    assert.equal(result.code, 67, describeRun('curl', result)); // CURLE_LOGIN_DENIED
    assert.match(result.stderr, exchange);
    assert.match(result.stderr, /^< -ERR \[AUTH\] /m);
    assert.equal(result.stdout.length, 0);
  });
}

// ---- mpop -------------------------------------------------------------------------------------

/** mpop's supported methods, from `mpop --version` (SCRAM needs mpop built with GNU SASL). */
async function mpopMethods(bin: string, work: string): Promise<string[]> {
  const version = await runClient(bin, ['--version'], { env: clientEnv(work) });
  const line = /Supported authentication methods:\s*\n(.*)/.exec(version.stdout.toString())?.[1] ?? '';
  return line.trim().split(/\s+/);
}

async function runMpop(
  bin: string,
  work: string,
  port: number,
  auth: string,
  secret: string,
): Promise<ClientResult> {
  const home = join(work, 'home');
  const maildir = join(work, 'maildir');
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
  await mkdir(home, { recursive: true, mode: 0o700 });
  const conf = join(work, `mpoprc-${auth}`);
  await writeFile(
    conf,
    [
      'account default',
      'host 127.0.0.1',
      `port ${port}`,
      'tls off',
      `user ${USER}`,
      `password "${secret}"`,
      `auth ${auth}`,
      'timeout 20',
      `delivery maildir ${maildir}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await chmod(conf, 0o600); // mpop refuses a configuration file that others can read
  return runClient(bin, ['-C', conf, '--auth-only', '--debug'], { env: clientEnv(home) });
}

for (const [auth, method] of [
  ['scram-sha-256', 'SCRAM-SHA-256'],
  ['cram-md5', 'CRAM-MD5'],
  ['plain', 'PLAIN'],
  ['login', 'LOGIN'],
  ['oauthbearer', 'OAUTHBEARER'],
  ['xoauth2', 'XOAUTH2'],
] as const) {
  test(`mpop (auth ${auth}) logs in`, async (t) => {
    const bin = await requireBinary(t, 'mpop');
    if (bin === undefined) return;
    const work = await tempDir(t);
    if (!(await mpopMethods(bin, work)).includes(auth)) {
      if (process.env['CI'] === 'true') throw new Error(`this mpop cannot do ${auth}`);
      t.skip(`this mpop cannot do ${auth}`);
      return;
    }
    const { server, port } = await serve(t);
    const secret = method === 'OAUTHBEARER' || method === 'XOAUTH2' ? TOKEN : PASSWORD;
    const result = await runMpop(bin, work, port, auth, secret);
    assert.equal(result.code, 0, describeRun('mpop', result));
    assert.match(result.stdout.toString(), new RegExp(`^--> AUTH ${method}`, 'm'));
    assert.match(result.stdout.toString(), /^<-- \+OK alice has 1 message \(20 octets\)/m);
    assert.equal(succeeded(server, method), 1);
  });
}

test('mpop with "auth on" picks SCRAM-SHA-256, and a wrong password fails', async (t) => {
  const bin = await requireBinary(t, 'mpop');
  if (bin === undefined) return;
  const work = await tempDir(t);
  if (!(await mpopMethods(bin, work)).includes('scram-sha-256')) {
    if (process.env['CI'] === 'true') throw new Error('this mpop cannot do scram-sha-256');
    t.skip('this mpop cannot do scram-sha-256');
    return;
  }
  const { server, port } = await serve(t);
  const ok = await runMpop(bin, work, port, 'on', PASSWORD);
  assert.equal(ok.code, 0, describeRun('mpop', ok));
  assert.match(ok.stdout.toString(), /^--> AUTH SCRAM-SHA-256/m);
  const wrong = await runMpop(bin, work, port, 'on', 'wrong');
  assert.notEqual(wrong.code, 0, describeRun('mpop', wrong));
  assert.match(wrong.stdout.toString() + wrong.stderr, /-ERR \[AUTH\] invalid user name or password/);
  assert.equal(succeeded(server, 'SCRAM-SHA-256'), 1);
  assert.equal(server.stats.logins.get('SCRAM-SHA-256')?.failed, 1);
});
