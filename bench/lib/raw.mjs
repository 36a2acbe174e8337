// The raw limits of the machine, measured in the same run: loopback TCP throughput between two
// processes, and the page-cache read speed of the fixture files.
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { open, readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { HUGE_USER, SESSION_USERS, bigUser, sessionUser } from './fixtures.mjs';

const RECEIVER = `
const srv = require('node:net').createServer((s) => {
  let n = 0;
  s.on('data', (c) => { n += c.length; });
  s.on('end', () => { process.stdout.write('done ' + n + '\\n'); srv.close(); s.end(); });
});
srv.listen(0, '127.0.0.1', () => process.stdout.write('port ' + srv.address().port + '\\n'));
setTimeout(() => process.exit(2), 120000).unref();
`;

/** MB/s of a plain sender (this process) to a plain receiver (a child process) over loopback. */
export async function loopbackMBps(totalBytes) {
  const child = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.on('exit', () => {
      reject(new Error('receiver exited'));
    });
  });
  const socket = connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const t0 = performance.now();
  for (let sent = 0; sent < totalBytes; sent += chunk.length) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  await once(child, 'exit');
  const s = (performance.now() - t0) / 1000;
  socket.destroy();
  return totalBytes / 1e6 / s;
}

async function readAll(files) {
  let bytes = 0;
  const t0 = performance.now();
  for (const f of files) bytes += (await readFile(f)).length;
  return { bytes, s: (performance.now() - t0) / 1000 };
}

/** Page-cache read speed: the 100 MB file and the session messages (second pass), and open+read of 50,000 files. */
export async function pageCache(root) {
  const files = [];
  for (const d of await readdir(join(root, bigUser(0), 'cur'))) files.push(join(root, bigUser(0), 'cur', d));
  for (let u = 0; u < SESSION_USERS; u++) {
    const dir = join(root, sessionUser(u), 'cur');
    for (const f of await readdir(dir)) files.push(join(dir, f));
  }
  await readAll(files);
  const { bytes, s } = await readAll(files);
  const hugeDir = join(root, HUGE_USER, 'cur');
  const huge = (await readdir(hugeDir)).map((f) => join(hugeDir, f));
  await readAll(huge);
  const t0 = performance.now();
  for (const f of huge) {
    const h = await open(f);
    await h.close();
  }
  const openMs = performance.now() - t0;
  const r = await readAll(huge);
  return { 'read MB/s': bytes / 1e6 / s, '50k open ms': openMs, '50k open+read ms': r.s * 1000 };
}
