// The ideal sender of the large-RETR scenario (issue 13): the message's wire form prepared once in a
// file, sent by lib/ideal-sender.py with sendfile(2). Poplar's speed is reported as a share of its
// speed, measured alternately with the same client in the same run.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bigUser } from './fixtures.mjs';

const CR = 13;
const LF = 10;
const DOT = 46;

/**
 * Writes `source` in POP3 wire form to `target`: every bare LF becomes CRLF, a line starting with
 * `.` gets another, then CRLF if missing and `.` CRLF. Written independently of Poplar's code (a
 * plain byte loop) so that it can serve as a reference. Resolves to the POP3 size (without the
 * terminator).
 */
export async function writeWireForm(source, target) {
  const out = createWriteStream(target);
  let prev = LF; // the first line starts a line
  let octets = 0;
  for await (const chunk of createReadStream(source, { highWaterMark: 1 << 20 })) {
    const buf = Buffer.allocUnsafe(chunk.length * 2 + 1);
    let o = 0;
    for (const b of chunk) {
      if (b === LF && prev !== CR) buf[o++] = CR;
      if (b === DOT && prev === LF) buf[o++] = DOT;
      buf[o++] = b;
      prev = b;
    }
    octets += o;
    if (!out.write(buf.subarray(0, o))) await once(out, 'drain');
  }
  const tail = Buffer.from(prev === LF ? '' : prev === CR ? '\n' : '\r\n');
  octets += tail.length;
  out.end(Buffer.concat([tail, Buffer.from('.\r\n')]));
  await once(out, 'finish');
  return octets;
}

/** Starts the ideal sender for the 100 MB message; a server object as lib/servers.mjs makes them. */
export async function startIdealSender({ fixtures }) {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-bench-ideal-'));
  const cur = join(fixtures.root, bigUser(0), 'cur');
  const [file] = await readdir(cur);
  const wire = join(dir, 'wire');
  const octets = await writeWireForm(join(cur, file), wire);
  const script = join(dirname(fileURLToPath(import.meta.url)), 'ideal-sender.py');
  const child = spawn('python3', [script, wire, String(octets)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let said = '';
  for await (const data of child.stdout) {
    said += data.toString();
    if (said.includes('\n')) break;
  }
  const port = Number(/^port (\d+)\n/.exec(said)?.[1]);
  if (!Number.isInteger(port)) throw new Error(`ideal sender did not start: ${said}`);
  return {
    name: 'ideal sendfile',
    port,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The rows the large-RETR scenario adds: the ideal sender's figures, and each server's MB/s as a
 * share of the ideal sender's (median of the runs' ratios, each run paired with the ideal run that
 * followed it) and of raw loopback. `results[i]` are the runs of `servers[i]`, `ideal` the ideal
 * sender's; `median` and `fmt` are the caller's.
 */
export function idealRows({ servers, results, ideal, loopbackMBps, median, fmt }) {
  const rows = [
    ['ideal sendfile sender MB/s', fmt(median(ideal.map((r) => r['MB/s'])))],
    ['ideal sendfile sender CPU %', fmt(median(ideal.map((r) => r['server CPU %'])))],
  ];
  servers.forEach((server, i) => {
    const mbps = results[i].map((r) => r['MB/s']);
    const ofIdeal = mbps.map((x, run) => (100 * x) / (ideal[run]?.['MB/s'] ?? NaN));
    rows.push([`${server.name} % of ideal sender`, fmt(median(ofIdeal))]);
    rows.push([`${server.name} % of raw loopback`, fmt((100 * median(mbps)) / loopbackMBps)]);
  });
  return rows;
}
