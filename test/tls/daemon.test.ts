// The `poplar` daemon with TLS: --tls-cert/--tls-key (STLS), --tls-port (POP3S), [sni."name"] in the
// config file, start-up errors, certificates reloaded on SIGHUP, and `npm run make-cert`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { usePki, type TestCert } from './certs.js';
import { LineClient } from './tls-client.js';

const pki = await usePki();
const trust = { ca: pki.ca };

// 14 + 2 + 15 = 31 octets, stored with CRLF.
const MESSAGE = 'Subject: tls\r\n\r\nover the wire\r\n';

interface Setup {
  readonly cwd: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Arguments for a daemon on 127.0.0.1 with the users file, the maildir and the certificate. */
  readonly args: string[];
}

/** A temp dir with `users` (alice:pw), `mail/alice` holding one message, and `cert.pem`/`key.pem` (localhost). */
async function setUp(t: TestContext, cert: TestCert = pki.localhost): Promise<Setup> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: MESSAGE }]);
  const certPath = join(cwd, 'cert.pem');
  const keyPath = join(cwd, 'key.pem');
  await copyFile(cert.certPath, certPath);
  await copyFile(cert.keyPath, keyPath);
  const args = ['--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0'];
  return { cwd, certPath, keyPath, args: [...args, '--tls-cert', certPath, '--tls-key', keyPath] };
}

/** The port of the implicit TLS listener on 127.0.0.1, from its 'listening' log line. */
function tlsPortOf(d: RunningDaemon): number {
  const entry = d.logs.find(
    (e) => e.msg === 'listening' && e['tls'] === true && e['address'] === '127.0.0.1',
  );
  assert.ok(entry !== undefined, `a TLS 'listening' line in ${d.stdout()}`);
  return entry['port'] as number;
}

async function plainClient(t: TestContext, port: number): Promise<LineClient> {
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  return client;
}

async function stlsClient(t: TestContext, port: number): Promise<LineClient> {
  const plain = await plainClient(t, port);
  const { client } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  return client;
}

async function tlsClient(t: TestContext, port: number, servername?: string): Promise<LineClient> {
  const client = await LineClient.tls(port, servername === undefined ? trust : { ...trust, servername });
  t.after(() => {
    client.close();
  });
  return client;
}

test('--tls-cert/--tls-key: STLS is offered on the POP3 port and works', async (t) => {
  const s = await setUp(t);
  const d = await startDaemon(t, { args: s.args, cwd: s.cwd });
  const plain = await plainClient(t, d.port);
  assert.ok((await plain.capa()).includes('STLS'));
  const { client } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  assert.equal(client.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (31 octets)');
  assert.deepEqual(await client.multi('RETR 1'), {
    status: '+OK 31 octets',
    lines: ['Subject: tls', '', 'over the wire'],
  });
  // Without --tls-port there is no TLS listener.
  assert.ok(!d.logs.some((e) => e.msg === 'listening' && e['tls'] === true));
});

test('without a certificate the daemon runs and does not offer STLS', async (t) => {
  const s = await setUp(t);
  const d = await startDaemon(t, { args: s.args.slice(0, 8), cwd: s.cwd });
  const client = await plainClient(t, d.port);
  assert.ok(!(await client.capa()).includes('STLS'));
  assert.equal(await client.command('STLS'), '-ERR TLS is not available on this server');
});

test('--tls-port 0: the implicit TLS listener logs "listening" with tls: true, and serves POP3S', async (t) => {
  const s = await setUp(t);
  const d = await startDaemon(t, { args: [...s.args, '--tls-port', '0'], cwd: s.cwd });
  const plainListening = d.logs.find((e) => e.msg === 'listening' && e['tls'] === false);
  assert.equal(plainListening?.['port'], d.port);
  const tlsPort = tlsPortOf(d);
  assert.notEqual(tlsPort, d.port);
  const client = await tlsClient(t, tlsPort);
  assert.match(client.greeting, /^\+OK Poplar POP3 server ready/);
  assert.equal(client.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  assert.equal(await client.command('STLS'), '-ERR command not permitted when TLS is active');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (31 octets)');
  const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['tls'] === true);
  assert.equal(opened['remote'], '127.0.0.1');
});

test('[sni."name"] in the config file: that certificate for that name, the default for others', async (t) => {
  const s = await setUp(t);
  const config = join(s.cwd, 'poplar.toml');
  await writeFile(
    config,
    [
      `tlsCert = ${JSON.stringify(s.certPath)}`,
      `tlsKey = ${JSON.stringify(s.keyPath)}`,
      'tlsPort = 0',
      '',
      '[sni."a.test"]',
      `cert = ${JSON.stringify(pki.a.certPath)}`,
      `key = ${JSON.stringify(pki.a.keyPath)}`,
      '',
      '[sni."b.test"]',
      `cert = ${JSON.stringify(pki.b.certPath)}`,
      `key = ${JSON.stringify(pki.b.keyPath)}`,
      '',
    ].join('\n'),
  );
  const d = await startDaemon(t, { args: [...s.args.slice(0, 8), '--config', config], cwd: s.cwd });
  const tlsPort = tlsPortOf(d);
  const a = await tlsClient(t, tlsPort, 'a.test');
  assert.equal(a.peerCertificate.fingerprint256, pki.a.fingerprint256);
  const b = await tlsClient(t, tlsPort, 'b.test');
  assert.equal(b.peerCertificate.fingerprint256, pki.b.fingerprint256);
  const none = await tlsClient(t, tlsPort);
  assert.equal(none.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  // SNI after STLS too.
  const plain = await plainClient(t, d.port);
  const { client } = await plain.startTls({ ...trust, servername: 'b.test' });
  t.after(() => {
    client.close();
  });
  assert.equal(client.peerCertificate.fingerprint256, pki.b.fingerprint256);
});

test('a missing certificate file: exit 1, naming the file', async (t) => {
  const s = await setUp(t);
  const missing = join(s.cwd, 'nope.pem');
  const args = [...s.args.slice(0, 8), '--tls-cert', missing, '--tls-key', s.keyPath];
  const run = await runPoplar(t, args, { cwd: s.cwd });
  assert.equal(run.code, 1);
  assert.equal(run.stderr, `poplar: TLS certificate ${missing} does not exist\n`);
  assert.ok(run.stderr.includes(missing), run.stderr);
});

test('a certificate file that is not PEM: exit 1, naming the files', async (t) => {
  const s = await setUp(t);
  await writeFile(s.certPath, 'this is not a certificate\n');
  const run = await runPoplar(t, s.args, { cwd: s.cwd });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^poplar: unusable TLS certificate or key/m);
  assert.ok(run.stderr.includes(s.certPath), run.stderr);
  assert.ok(run.stderr.includes(s.keyPath), run.stderr);
});

test('a key that does not match the certificate: exit 1', async (t) => {
  const s = await setUp(t);
  await copyFile(pki.a.keyPath, s.keyPath);
  const run = await runPoplar(t, s.args, { cwd: s.cwd });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^poplar: unusable TLS certificate or key .*key values mismatch/m);
});

test('an unusable SNI certificate: exit 1, naming that certificate', async (t) => {
  const s = await setUp(t);
  const bad = join(s.cwd, 'bad.pem');
  await writeFile(bad, 'garbage\n');
  const config = join(s.cwd, 'poplar.toml');
  await writeFile(
    config,
    `[sni."a.test"]\ncert = ${JSON.stringify(bad)}\nkey = ${JSON.stringify(pki.a.keyPath)}\n`,
  );
  const run = await runPoplar(t, [...s.args, '--config', config], { cwd: s.cwd });
  assert.equal(run.code, 1);
  assert.ok(run.stderr.includes(bad), run.stderr);
});

test('--tls-port without a certificate, or a certificate without a key: exit 2', async (t) => {
  const s = await setUp(t);
  const noCert = await runPoplar(t, [...s.args.slice(0, 8), '--tls-port', '0'], { cwd: s.cwd });
  assert.equal(noCert.code, 2);
  assert.equal(noCert.stderr, 'poplar: --tls-port and sni need --tls-cert and --tls-key\n');
  const noKey = await runPoplar(t, [...s.args.slice(0, 8), '--tls-cert', s.certPath], { cwd: s.cwd });
  assert.equal(noKey.code, 2);
  assert.equal(noKey.stderr, 'poplar: --tls-cert and --tls-key go together\n');
});

test('SIGHUP after replacing the certificate files: new connections get the new one, open sessions go on', async (t) => {
  const s = await setUp(t);
  const d = await startDaemon(t, { args: [...s.args, '--tls-port', '0'], cwd: s.cwd });
  const tlsPort = tlsPortOf(d);
  const implicit = await tlsClient(t, tlsPort);
  assert.equal(implicit.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  assert.equal(await implicit.command('USER alice'), '+OK send PASS');
  assert.equal(await implicit.command('PASS pw'), '+OK alice has 1 message (31 octets)');
  const upgraded = await stlsClient(t, d.port);
  assert.equal(upgraded.peerCertificate.fingerprint256, pki.localhost.fingerprint256);

  await copyFile(pki.renewed.certPath, s.certPath);
  await copyFile(pki.renewed.keyPath, s.keyPath);
  const since = d.logs.length;
  d.child.kill('SIGHUP');
  await d.waitForLog((e) => e.msg === 'certificates reloaded', { since });

  const fresh = await tlsClient(t, tlsPort);
  assert.equal(fresh.peerCertificate.fingerprint256, pki.renewed.fingerprint256);
  assert.equal(fresh.peerCertificate.subject.CN, 'localhost renewed');
  const freshStls = await stlsClient(t, d.port);
  assert.equal(freshStls.peerCertificate.fingerprint256, pki.renewed.fingerprint256);

  // The sessions from before the reload carry on.
  assert.equal(await implicit.command('STAT'), '+OK 1 31');
  assert.equal(await implicit.command('NOOP'), '+OK');
  assert.deepEqual(await implicit.multi('RETR 1'), {
    status: '+OK 31 octets',
    lines: ['Subject: tls', '', 'over the wire'],
  });
  assert.equal(await upgraded.command('USER alice'), '+OK send PASS');
  assert.equal(await implicit.command('QUIT'), '+OK Poplar signing off (1 message left)');
  assert.equal(await upgraded.command('PASS pw'), '+OK alice has 1 message (31 octets)');
  assert.equal(await upgraded.command('STAT'), '+OK 1 31');
});

test('SIGHUP with a broken certificate file: an error is logged and the old certificate stays', async (t) => {
  const s = await setUp(t);
  const d = await startDaemon(t, { args: [...s.args, '--tls-port', '0'], cwd: s.cwd });
  const tlsPort = tlsPortOf(d);
  await writeFile(s.certPath, 'truncated\n');
  const since = d.logs.length;
  d.child.kill('SIGHUP');
  const entry = await d.waitForLog((e) => e.msg === 'certificates not reloaded; the old ones stay in use', {
    since,
  });
  const err = entry['err'] as { type: string; message: string; stack: string };
  assert.equal(err.type, 'Error', "err is pino's error object");
  assert.match(err.message, /unusable TLS certificate or key/);
  assert.ok(!d.logs.slice(since).some((e) => e.msg === 'certificates reloaded'));
  const client = await tlsClient(t, tlsPort);
  assert.equal(client.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
});

/** Runs `node scripts/make-cert.mjs dir` (what `npm run make-cert -- dir` runs). */
async function makeCert(dir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // From test/tls/ under tsx, from build/test/tls/ when compiled.
  const root = import.meta.url.includes('/build/test/') ? '../../../' : '../../';
  const script = fileURLToPath(new URL(`${root}scripts/make-cert.mjs`, import.meta.url));
  const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, stderr };
}

test('npm run make-cert -- DIR: quietly, a self-signed certificate for localhost that the daemon serves', async (t) => {
  const s = await setUp(t);
  const dir = join(s.cwd, 'tls');
  const made = await makeCert(dir);
  assert.equal(made.code, 0, made.stderr);
  assert.equal(made.stderr, '', "openssl's progress dots are not shown");
  assert.match(made.stdout, new RegExp(`^wrote ${join(dir, 'cert.pem')} and ${join(dir, 'key.pem')}$`, 'm'));
  const pem = await readFile(join(dir, 'cert.pem'));
  const cert = new X509Certificate(pem);
  assert.equal(cert.subject, 'CN=localhost');
  assert.equal(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.ok(cert.verify(cert.publicKey), 'self-signed');

  const args = [...s.args.slice(0, 8), '--tls-cert', 'tls/cert.pem', '--tls-key', 'tls/key.pem'];
  const d = await startDaemon(t, { args: [...args, '--tls-port', '0'], cwd: s.cwd });
  // Trusting the certificate itself, the name 127.0.0.1 verifies.
  const client = await LineClient.tls(tlsPortOf(d), { ca: pem });
  t.after(() => {
    client.close();
  });
  assert.equal(client.tlsSocket.authorized, true);
  assert.equal(client.peerCertificate.fingerprint256, cert.fingerprint256);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (31 octets)');
});
