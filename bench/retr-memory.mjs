// Measures the daemon's memory while a client retrieves one large message.
// Usage: npm run build && node bench/retr-memory.mjs [sizeMB=20]
// Prints the daemon's resident memory before the transfer and its peak during it (VmHWM, Linux),
// and checks the received bytes against the file's SHA-256. Loopback only; stops by itself.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

const sizeMb = Number(process.argv[2] ?? 20);
const root = await mkdtemp(join(tmpdir(), 'poplar-retr-mem-'));
const maildir = join(root, 'mail', 'alice');
for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
await writeFile(join(root, 'users'), 'alice:{PLAIN}pw\n');

// The message: CRLF lines of 78 characters, some starting with a dot, written in chunks.
const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
const dotLine = Buffer.from(`.${'y'.repeat(75)}\r\n`);
const hash = createHash('sha256');
const out = createWriteStream(join(maildir, 'new', '1700000000.big.bench'));
const header = Buffer.from('Subject: big\r\n\r\n');
out.write(header);
hash.update(header);
let written = header.length;
for (let i = 0; written < sizeMb * 1024 * 1024; i++) {
  const l = i % 100 === 0 ? dotLine : line;
  hash.update(l);
  written += l.length;
  if (!out.write(l)) await once(out, 'drain');
}
out.end();
await once(out, 'finish');
const expected = hash.digest('hex');

const daemon = spawn(
  process.execPath,
  [
    'bin/poplar.js',
    // One process, so that the memory read from /proc is the memory of the one that sends.
    '--workers',
    '1',
    '-p',
    '0',
    '-m',
    join(root, 'mail'),
    '--users',
    join(root, 'users'),
    '--listen',
    '127.0.0.1',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let port;
let logs = '';
for await (const chunk of daemon.stdout) {
  logs += chunk;
  const m = /"port":(\d+)/.exec(logs);
  if (m !== null && logs.includes('poplar started')) {
    port = Number(m[1]);
    break;
  }
}
const status = async () => {
  const text = await readFile(`/proc/${daemon.pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
};
const before = await status();

const socket = connect({ port, host: '127.0.0.1' });
socket.write('USER alice\r\nPASS pw\r\nRETR 1\r\n');
const received = createHash('sha256');
let buffered = Buffer.alloc(0);
let phase = 0; // 0: greeting + 2 replies + RETR status, 1: body
let lines = 0;
let bodyBytes = 0;
const started = process.hrtime.bigint();
for await (const chunk of socket) {
  buffered = Buffer.concat([buffered, chunk]);
  while (phase === 0) {
    const nl = buffered.indexOf('\r\n');
    if (nl === -1) break;
    buffered = buffered.subarray(nl + 2);
    if (++lines === 4) phase = 1;
  }
  if (phase === 1) {
    // Take whole lines only, so a stuffed dot is never split from its line start.
    // `buffered` always starts at a line start here, so the terminator may also be all that is left.
    const end =
      buffered.equals(Buffer.from('.\r\n')) ||
      (buffered.length >= 5 && buffered.subarray(-5).equals(Buffer.from('\r\n.\r\n')));
    const take = end ? buffered.subarray(0, -3) : buffered.subarray(0, buffered.lastIndexOf('\n') + 1);
    let text = take.toString('latin1').replaceAll('\r\n..', '\r\n.');
    if (text.startsWith('..')) text = text.slice(1);
    received.update(Buffer.from(text, 'latin1'));
    bodyBytes += take.length;
    buffered = buffered.subarray(take.length);
    if (end) break;
  }
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const after = await status();
socket.end('QUIT\r\n');
daemon.kill('SIGTERM');
await once(daemon, 'exit');
await rm(root, { recursive: true, force: true });

console.log(
  `message: ${(written / 1048576).toFixed(1)} MiB, ${bodyBytes} bytes received in ${seconds.toFixed(2)} s`,
);
console.log(`bytes match: ${received.digest('hex') === expected}`);
console.log(
  `daemon RSS before RETR: ${before.rssMb.toFixed(1)} MiB (peak so far ${before.peakMb.toFixed(1)} MiB)`,
);
console.log(
  `daemon peak RSS after RETR: ${after.peakMb.toFixed(1)} MiB (growth ${(after.peakMb - before.peakMb).toFixed(1)} MiB)`,
);
