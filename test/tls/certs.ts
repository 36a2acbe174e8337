import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One certificate and its key, as files and as PEM bytes. */
export interface TestCert {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The subject's CN, as the certificate says it. */
  readonly cn: string;
  /** SHA-256 fingerprint (`AA:BB:...`), as `getPeerCertificate().fingerprint256` reports it. */
  readonly fingerprint256: string;
}

/**
 * A test CA and the server certificates it signed, made with the `openssl` command in a temp dir:
 * - `localhost`: CN localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1 (the default certificate);
 * - `renewed`: the same names, another key and CN (what a reload installs);
 * - `a`, `b`: CN and SAN a.test, b.test (SNI certificates);
 * - `wild`: CN and SAN *.wild.test.
 */
export interface TestPki {
  readonly dir: string;
  readonly caPath: string;
  readonly ca: Buffer;
  readonly localhost: TestCert;
  readonly renewed: TestCert;
  readonly a: TestCert;
  readonly b: TestCert;
  readonly wild: TestCert;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

const leafConfig = (sans: string): string => `
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${sans}
`;

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { env: { ...process.env, OPENSSL_CONF: '/dev/null' } });
  } catch (error) {
    const { stderr = '' } = error as { stderr?: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${(error as Error).message}\n${stderr}`, {
      cause: error,
    });
  }
}

let serial = 0x1000;

async function leaf(dir: string, ca: { cert: string; key: string }, name: string, cn: string, sans: string) {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.cnf`);
  await writeFile(ext, leafConfig(sans));
  await openssl(
    ['req', '-new', ...EC, '-config', join(dir, 'openssl.cnf'), '-subj', `/CN=${cn}`].concat([
      '-keyout',
      keyPath,
      '-out',
      csr,
    ]),
  );
  serial += 1;
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    String(serial),
    '-days',
    '2',
    '-sha256',
    '-extfile',
    ext,
    '-extensions',
    'leaf_ext',
    '-out',
    certPath,
  ]);
  const cert = await readFile(certPath);
  return {
    certPath,
    keyPath,
    cert,
    key: await readFile(keyPath),
    cn,
    fingerprint256: new X509Certificate(cert).fingerprint256,
  };
}

/** Makes the CA and certificates in `dir`. */
export async function makePki(dir: string): Promise<TestPki> {
  await writeFile(join(dir, 'openssl.cnf'), CONFIG);
  const ca = { cert: join(dir, 'ca.pem'), key: join(dir, 'ca.key') };
  await openssl([
    'req',
    '-x509',
    '-new',
    ...EC,
    '-config',
    join(dir, 'openssl.cnf'),
    '-extensions',
    'ca_ext',
    '-subj',
    '/CN=Poplar Test CA',
    '-days',
    '2',
    '-sha256',
    '-keyout',
    ca.key,
    '-out',
    ca.cert,
  ]);
  const [localhost, renewed, a, b, wild] = await Promise.all([
    leaf(dir, ca, 'localhost', 'localhost', 'DNS:localhost,IP:127.0.0.1,IP:::1'),
    leaf(dir, ca, 'renewed', 'localhost renewed', 'DNS:localhost,IP:127.0.0.1,IP:::1'),
    leaf(dir, ca, 'a', 'a.test', 'DNS:a.test'),
    leaf(dir, ca, 'b', 'b.test', 'DNS:b.test'),
    leaf(dir, ca, 'wild', '*.wild.test', 'DNS:*.wild.test'),
  ]);
  return { dir, caPath: ca.cert, ca: await readFile(ca.cert), localhost, renewed, a, b, wild };
}

/**
 * The PKI for one test file: call it at the file's top level (`const pki = await usePki();`). The
 * directory is removed when the file's tests are done. Needs the `openssl` command.
 */
export function usePki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'poplar-tls-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return makePki(dir);
}

/** The server's `tls` option for a certificate: `{ cert, key }`. */
export const pair = (c: TestCert): { cert: Buffer; key: Buffer } => ({ cert: c.cert, key: c.key });
