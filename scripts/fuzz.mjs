// The network fuzzer's long mode: starts a Poplar daemon on a temporary folder, sends it a
// million (or --lines N) random and mutated POP3 lines and monitor frames, then checks that it
// still runs, serves a whole session byte for byte, answers the monitor, logged no error, lost
// or changed no mail, and shuts down cleanly. Prints the seed, lines sent, connections, elapsed
// time and the health check; exits 0 when all is well, 1 otherwise.
//
//   node --import tsx scripts/fuzz.mjs [--lines 1000000] [--seed N] [--concurrency 32] [--build] [--keep]
//
// From source by default (needs --import tsx); --build runs the compiled daemon and fuzzer
// from build/ (after `npm run build`), without tsx.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout } from 'node:timers';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    'max-minutes': { type: 'string', default: '60' },
    build: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(
    'usage: node --import tsx scripts/fuzz.mjs [--lines N] [--seed N] [--concurrency N] [--max-minutes N] [--build] [--keep]',
  );
  process.exit(0);
}
const lines = Number(values.lines);
const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
const concurrency = Number(values.concurrency);
if (![lines, seed, concurrency].every(Number.isSafeInteger)) {
  console.error('fuzz: --lines, --seed and --concurrency take whole numbers');
  process.exit(2);
}

const repo = new URL('..', import.meta.url);
const fromBuild = values.build;
const module = (path) => new URL(fromBuild ? `build/${path}.js` : `${path}.ts`, repo).href;
if (!fromBuild && !process.execArgv.some((a) => a.includes('tsx'))) {
  console.error(
    'fuzz: run it with `node --import tsx scripts/fuzz.mjs`, or pass --build after `npm run build`',
  );
  process.exit(2);
}
const { fuzz } = await import(module('test/security/fuzz-engine'));
const target = await import(module('test/security/fuzz-target'));
const { selfSignedCertificate } = await import(module('test/security/fixture'));

const cwd = await mkdtemp(join(tmpdir(), 'poplar-fuzz-'));
const t = await target.prepareFuzzTarget(cwd, selfSignedCertificate);
console.log(
  `fuzz seed ${seed}; folder ${cwd}; daemon from ${fromBuild ? 'build/' : 'src/ (tsx)'}; TLS ${t.hasTls}`,
);

// The daemon, its log read line by line: only the start entry and the error entries are kept.
const execArgv = fromBuild ? [] : process.execArgv.map((a) => (a === 'tsx' ? import.meta.resolve('tsx') : a));
const entry = fileURLToPath(new URL(fromBuild ? 'bin/poplar.js' : 'src/cli/main.ts', repo));
const child = spawn(process.execPath, [...execArgv, entry, '--monitor-port', '0', ...t.args], {
  cwd,
  stdio: ['ignore', 'pipe', 'pipe'],
});
const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
let stderr = '';
child.stderr.setEncoding('utf8');
child.stderr.on('data', (chunk) => {
  stderr += chunk;
});
/** Entries at level 50 or above. */
const errors = [];
let badLines = 0;
let logLines = 0;
/** The log lines of each connection still open, to show what a connection left hanging did. */
const open = new Map();
/** The client port of every POP3 connection, by cid. */
const ports = new Map();
let onClosed;
const started = new Promise((resolve, reject) => {
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (raw) => {
    logLines += 1;
    let e;
    try {
      e = JSON.parse(raw);
    } catch {
      badLines += 1;
      return;
    }
    if (e.level >= 50) errors.push({ ...e, raw });
    if (e.msg === 'connection opened') {
      open.set(e.cid, []);
      ports.set(e.cid, e.port);
    }
    if (open.has(e.cid)) open.get(e.cid).push(raw);
    if (e.msg === 'connection closed') {
      open.delete(e.cid);
      onClosed?.();
    }
    if (e.msg === 'poplar started') resolve(e);
  });
  void exited.then(({ code, signal }) => reject(new Error(`poplar exited (${code ?? signal}): ${stderr}`)));
});
const start = await started;
const pop3Port = start.addresses.find((a) => a.address === '127.0.0.1').port;
const monitorPort = start.monitor.find((a) => a.address === '127.0.0.1').port;
const before = await target.baseline(t);
/** The fuzzed POP3 connections by client port (the `port` of the daemon's 'connection opened'). */
const scenarios = new Map();

const report = await fuzz({
  pop3Port,
  monitorPort,
  lines,
  seed,
  concurrency,
  credentials: target.FUZZ_USERS,
  monitorToken: target.FUZZ_ADMIN_TOKEN,
  maxDurationMs: Number(values['max-minutes']) * 60_000,
  onConnection: (c) => {
    if (c.target === 'pop3') scenarios.set(c.localPort, c);
  },
  onProgress: (p) => {
    const rate = Math.round(p.linesSent / (p.elapsedMs / 1000));
    console.log(
      `  ${p.linesSent} lines, ${p.connections} connections, ${(p.elapsedMs / 1000).toFixed(1)} s (${rate} lines/s)`,
    );
  },
});
console.log(
  `sent ${report.linesSent} lines (${report.bytesSent} bytes) over ${report.connections} connections ` +
    `(${report.pop3Connections} POP3, ${report.monitorConnections} monitor, ${report.tlsHandshakes} STLS handshakes, ` +
    `${report.closedByServer} closed by the server, ${report.connectFailures} failed to connect) ` +
    `in ${(report.elapsedMs / 1000).toFixed(1)} s${report.isTimedOut ? ' (stopped at --max-minutes)' : ''}`,
);

// The health check.
const checks = [];
const check = async (name, fn) => {
  try {
    const detail = await fn();
    checks.push({ name, ok: true });
    console.log(`  ok    ${name}${detail === undefined ? '' : `: ${detail}`}`);
  } catch (error) {
    checks.push({ name, ok: false });
    console.log(`  FAIL  ${name}: ${error.message}`);
  }
};
console.log('health check:');
await check('the daemon is still running', () => {
  if (child.exitCode !== null || child.signalCode !== null) throw new Error('it exited');
});
await check('every fuzzed connection closed by the daemon', async () => {
  const until = Date.now() + Number(process.env.FUZZ_CLOSE_WAIT_MS ?? 30_000);
  while (open.size > 0 && Date.now() < until) {
    await new Promise((resolve) => {
      onClosed = resolve;
      setTimeout(resolve, 1000);
    });
  }
  if (open.size > 0) {
    const shown = [...open.values()].slice(0, 3).map((log) => {
      const port = JSON.parse(log[0]).port;
      const sent = scenarios.get(port)?.describe().replaceAll('\n', '\n      ') ?? '?';
      return `${log.join('\n    ')}\n    connection ${scenarios.get(port)?.index} sent:\n      ${sent}`;
    });
    throw new Error(`${open.size} still open; the log of the first ones:\n    ${shown.join('\n\n    ')}`);
  }
});
await check('no mail lost or changed, nothing outside the mail root touched', () =>
  target.assertMailIntact(t, before, `seed ${seed}`),
);
await check('a whole session, byte for byte', async () => {
  const transcript = await target.assertFullSession(pop3Port);
  return `${transcript.length} bytes`;
});
await check(
  'the monitor answers GET',
  async () => `historic connections ${await target.assertMonitorAnswers(monitorPort)}`,
);
// Error entries of known, reported bugs (fuzz-target.ts KNOWN_ISSUES) are shown, not failed on.
const { unexpected, known } = target.classifyErrors(errors);
await check('no log entry at level 50 or above', () => {
  if (unexpected.length > 0) {
    const first = unexpected[0];
    const sent = scenarios.get(ports.get(first.cid));
    const what =
      sent === undefined
        ? ''
        : `\n    connection ${sent.index} sent:\n      ${sent.describe().replaceAll('\n', '\n      ')}`;
    throw new Error(`${unexpected.length}, first: ${first.raw}${what}`);
  }
  return `${logLines} log lines`;
});
for (const [name, count] of known) console.log(`  known issue, seen ${count} times: ${name}`);
await check('every log line is JSON', () => {
  if (badLines > 0) throw new Error(`${badLines} are not`);
});
await check('nothing on stderr', () => {
  if (stderr !== '') throw new Error(JSON.stringify(stderr.slice(0, 500)));
});
await check('a clean shutdown on SIGTERM', async () => {
  child.kill('SIGTERM');
  const { code, signal } = await exited;
  if (code !== 0) throw new Error(`exit ${code ?? signal}`);
});
if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');

const failed = checks.filter((c) => !c.ok).length;
console.log(
  failed === 0
    ? `all ${checks.length} checks passed (seed ${seed})`
    : `${failed} checks FAILED (seed ${seed})`,
);
if (values.keep) console.log(`folder kept: ${cwd}`);
else await rm(cwd, { recursive: true, force: true });
process.exitCode = failed === 0 ? 0 : 1;
