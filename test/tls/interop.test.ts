// Real TLS clients: Python's poplib (stls() and POP3_SSL), curl (pop3s:// and pop3:// with
// --ssl-reqd) and openssl s_client (-starttls pop3, and implicit TLS). Each logs in, retrieves a
// known message and compares it byte for byte. The server treats the client as non-local, so a
// login can only succeed once the connection is encrypted. A missing client skips the test
// locally and fails it when CI=true.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';
import { clientEnv, describeRun, runClient, type ClientResult } from '../interop/run-client.js';
import { pair, usePki } from './certs.js';

const pki = await usePki();

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** About 40 KB of ordinary lines, so that the message spans several TLS records (16 KiB each). */
const FILLER = Array.from(
  { length: 600 },
  (_, i) => `${String(i).padStart(4, '0')} The quick brown fox jumps over the lazy dog.\r\n`,
).join('');

/**
 * The message as stored and as a client must receive it (CRLF line ends, ending in CRLF), and its
 * byte-stuffed form on the wire, both written out by hand.
 */
const MESSAGE = latin1(
  'From: tester@example.org\r\nTo: alice@example.org\r\nSubject: over TLS\r\n\r\n' +
    '.one leading dot\r\n..two leading dots\r\n.\r\nhigh bytes: \xe9\xff\x80\r\n' +
    FILLER +
    'last line\r\n',
);
const STUFFED = latin1(
  'From: tester@example.org\r\nTo: alice@example.org\r\nSubject: over TLS\r\n\r\n' +
    '..one leading dot\r\n...two leading dots\r\n..\r\nhigh bytes: \xe9\xff\x80\r\n' +
    FILLER +
    'last line\r\n',
);
const SIZE = MESSAGE.length;
const USER = 'alice';
const PASSWORD = 'pw';

interface TlsServer {
  readonly port: number;
  readonly tlsPort: number;
  readonly work: string;
}

/** Plain and implicit TLS listeners on loopback; clients count as non-local (isLocalAddress). */
async function startTlsServer(t: TestContext): Promise<TlsServer> {
  const { server, port } = await startServer(t, {
    tls: pair(pki.localhost),
    isLocalAddress: () => false,
    mailboxes: { [USER]: [MESSAGE] },
    hostname: 'poplar.test',
  });
  const { port: tlsPort } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
  return { port, tlsPort, work: await tempDir(t, 'poplar-tls-interop-') };
}

// ---------------------------------------------------------------------------------------------
// Python poplib

const DRIVER = String.raw`
import json, poplib, ssl, sys

spec = json.loads(sys.argv[1])
context = ssl.create_default_context(cafile=spec['ca'])
out = {}
if spec['mode'] == 'stls':
    pop = poplib.POP3(spec['host'], spec['port'], timeout=20)
    out['capaBefore'] = sorted(pop.capa().keys())
    out['stls'] = pop.stls(context).decode('latin1')
else:
    pop = poplib.POP3_SSL(spec['host'], spec['port'], context=context, timeout=20)
out['welcome'] = pop.getwelcome().decode('latin1')
out['version'] = pop.sock.version()
out['capa'] = sorted(pop.capa().keys())
out['user'] = pop.user(spec['user']).decode('latin1')
out['pass'] = pop.pass_(spec['password']).decode('latin1')
resp, lines, octets = pop.retr(1)
out['retr'] = resp.decode('latin1')
out['body'] = b''.join(line + b'\r\n' for line in lines).decode('latin1')
out['octets'] = octets
out['quit'] = pop.quit().decode('latin1')
print(json.dumps(out))
`;

interface PoplibResult {
  readonly capaBefore?: string[];
  readonly stls?: string;
  readonly welcome: string;
  readonly version: string;
  readonly capa: string[];
  readonly user: string;
  readonly pass: string;
  readonly retr: string;
  readonly body: string;
  readonly octets: number;
  readonly quit: string;
}

async function poplib(t: TestContext, mode: 'stls' | 'ssl'): Promise<PoplibResult | undefined> {
  const python = await requireBinary(t, 'python3');
  if (python === undefined) return undefined;
  const srv = await startTlsServer(t);
  const script = join(srv.work, 'driver.py');
  await writeFile(script, DRIVER);
  const spec = {
    mode,
    host: '127.0.0.1',
    port: mode === 'stls' ? srv.port : srv.tlsPort,
    ca: pki.caPath,
    user: USER,
    password: PASSWORD,
  };
  const result = await runClient(python, ['-I', '-B', script, JSON.stringify(spec)], {
    env: clientEnv(srv.work),
  });
  assert.equal(result.code, 0, describeRun('python3 poplib', result));
  return JSON.parse(result.stdout.toString('utf8')) as PoplibResult;
}

function checkPoplibSession(r: PoplibResult): void {
  assert.match(r.welcome, /^\+OK Poplar POP3 server ready/);
  assert.match(r.version, /^TLSv1\.[23]$/);
  assert.ok(r.capa.includes('USER'));
  assert.ok(!r.capa.includes('STLS'), 'no STLS under TLS');
  assert.equal(r.user, '+OK send PASS');
  assert.equal(r.pass, `+OK alice has 1 message (${SIZE} octets)`);
  assert.equal(r.retr, `+OK ${SIZE} octets`);
  assert.ok(latin1(r.body).equals(MESSAGE), 'the message, byte for byte');
  assert.equal(r.octets, SIZE);
  assert.equal(r.quit, '+OK Poplar signing off (1 message left)');
}

test('poplib: POP3 + stls() with a context trusting the test CA, then user/pass_ and retr', async (t) => {
  const r = await poplib(t, 'stls');
  if (r === undefined) return;
  // Before STLS, as a non-local client: STLS offered, USER not.
  const before = r.capaBefore ?? [];
  assert.ok(before.includes('STLS'));
  assert.ok(!before.includes('USER'));
  assert.equal(r.stls, '+OK Begin TLS negotiation');
  checkPoplibSession(r);
});

test('poplib: POP3_SSL (implicit TLS), then user/pass_ and retr', async (t) => {
  const r = await poplib(t, 'ssl');
  if (r === undefined) return;
  checkPoplibSession(r);
});

// ---------------------------------------------------------------------------------------------
// curl

async function curl(t: TestContext, args: (srv: TlsServer) => string[]): Promise<ClientResult | undefined> {
  const path = await requireBinary(t, 'curl');
  if (path === undefined) return undefined;
  const srv = await startTlsServer(t);
  return runClient(
    path,
    [
      '-q',
      '--silent',
      '--show-error',
      '--verbose',
      '--max-time',
      '20',
      '--noproxy',
      '*',
      '--cacert',
      pki.caPath,
      '--user',
      `${USER}:${PASSWORD}`,
      ...args(srv),
    ],
    { env: clientEnv(srv.work) },
  );
}

test('curl pop3s:// with --cacert retrieves the message byte for byte', async (t) => {
  const result = await curl(t, (srv) => [`pop3s://127.0.0.1:${srv.tlsPort}/1`]);
  if (result === undefined) return;
  assert.equal(result.code, 0, describeRun('curl', result));
  assert.ok(result.stdout.equals(MESSAGE), 'the message, byte for byte');
  assert.doesNotMatch(result.stderr, /^> STLS/m, 'implicit TLS: no STLS');
  assert.match(result.stderr, /^> RETR 1\r?$/m);
});

test('curl pop3:// with --ssl-reqd upgrades with STLS and retrieves the message byte for byte', async (t) => {
  const result = await curl(t, (srv) => ['--ssl-reqd', `pop3://127.0.0.1:${srv.port}/1`]);
  if (result === undefined) return;
  assert.equal(result.code, 0, describeRun('curl', result));
  assert.ok(result.stdout.equals(MESSAGE), 'the message, byte for byte');
  assert.match(result.stderr, /^> STLS\r?$/m);
  assert.match(result.stderr, /^< \+OK Begin TLS negotiation\r?$/m);
  assert.match(result.stderr, /^> RETR 1\r?$/m);
});

// ---------------------------------------------------------------------------------------------
// openssl s_client

/** Runs a command with `input` on its standard input; never rejects for a non-zero exit. */
function runWithInput(
  command: string,
  args: readonly string[],
  input: string,
  env: Record<string, string>,
): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 25_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      resolve({
        code,
        signal,
        timedOut,
        stdout,
        stdoutBytes: stdout.length,
        stdoutSha256: '',
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** What the server sends for USER, PASS, RETR 1 and QUIT, written out by hand. */
const SESSION_REPLIES = Buffer.concat([
  latin1(`+OK send PASS\r\n+OK alice has 1 message (${SIZE} octets)\r\n+OK ${SIZE} octets\r\n`),
  STUFFED,
  latin1('.\r\n+OK Poplar signing off (1 message left)\r\n'),
]);

async function sClient(t: TestContext, starttls: boolean): Promise<ClientResult | undefined> {
  const openssl = await requireBinary(t, 'openssl');
  if (openssl === undefined) return undefined;
  const srv = await startTlsServer(t);
  const port = starttls ? srv.port : srv.tlsPort;
  return runWithInput(
    openssl,
    [
      's_client',
      ...(starttls ? ['-starttls', 'pop3'] : []),
      '-connect',
      `127.0.0.1:${port}`,
      '-CAfile',
      pki.caPath,
      '-verify_return_error',
      '-verify_ip',
      '127.0.0.1',
      '-quiet',
    ],
    `USER ${USER}\r\nPASS ${PASSWORD}\r\nRETR 1\r\nQUIT\r\n`,
    clientEnv(srv.work),
  );
}

test('openssl s_client -starttls pop3: USER, PASS, RETR 1, QUIT; the replies byte for byte', async (t) => {
  const result = await sClient(t, true);
  if (result === undefined) return;
  assert.equal(result.code, 0, describeRun('openssl s_client', result));
  // s_client reads the greeting and the STLS reply itself; what it prints is what came over TLS.
  assert.ok(
    result.stdout.equals(SESSION_REPLIES),
    `got ${JSON.stringify(result.stdout.subarray(0, 300).toString('latin1'))}...`,
  );
});

test('openssl s_client on the implicit TLS port: the greeting, then the same replies byte for byte', async (t) => {
  const result = await sClient(t, false);
  if (result === undefined) return;
  assert.equal(result.code, 0, describeRun('openssl s_client', result));
  const greetingEnd = result.stdout.indexOf('\r\n') + 2;
  assert.match(result.stdout.subarray(0, greetingEnd).toString('latin1'), /^\+OK Poplar POP3 server ready/);
  assert.ok(
    result.stdout.subarray(greetingEnd).equals(SESSION_REPLIES),
    `got ${JSON.stringify(result.stdout.subarray(0, 300).toString('latin1'))}...`,
  );
});
