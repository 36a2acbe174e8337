// Makes a self-signed certificate for development: tls/cert.pem and tls/key.pem, valid for
// localhost, 127.0.0.1 and ::1, for 365 days. Needs the openssl command.
// Usage: npm run make-cert [-- DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'tls';
mkdirSync(dir, { recursive: true, mode: 0o700 });
const result = spawnSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '365',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ],
  // openssl's key-generation progress (lines of dots) is noise; its output is shown only on failure.
  { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
);
if (result.error !== undefined) {
  console.error(`make-cert: cannot run openssl: ${result.error.message}`);
  process.exit(1);
}
if (result.status !== 0) {
  process.stderr.write(result.stdout + result.stderr);
  process.exit(result.status ?? 1);
}
console.log(`wrote ${join(dir, 'cert.pem')} and ${join(dir, 'key.pem')}`);
console.log(
  `try: npm start -- --tls-cert ${join(dir, 'cert.pem')} --tls-key ${join(dir, 'key.pem')} --tls-port 1995`,
);
