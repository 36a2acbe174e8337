// Flood benchmark (issue 6): thousands of connections that never send, or trickle one byte a
// second, held open against one Poplar server while honest clients run full sessions (USER, PASS,
// STAT, LIST, UIDL, RETR of every message, QUIT). Prints p50/p99 of the honest sessions without and
// with the flood. Target: p99 < 100 ms under the flood.
//
// Usage:
//   node bench/flood.mjs [options]                  the compiled build (build/src/index.js; npm run build first)
//   node --import tsx bench/flood.mjs --src [...]   the TypeScript sources, no build needed
// Options: --silent N (4000) --slow N (1000) --seconds S (10) --baseline-seconds S (3)
//          --warmup-seconds S (2) --concurrency C (4) --messages N (10) --message-bytes B (4096)
//
// The server runs in a child process with Poplar's default per-address limit (maxConnectionsPerIp
// 20): the flood comes from as many 127.1.x.y source addresses as it needs (Linux routes all of
// 127/8 to loopback). maxConnections is raised to fit the flood, and loginTimeoutMs to outlast the
// run, so the flood stays connected throughout. The honest clients connect from 127.0.0.1. Every
// socket and the child are closed at the end; a deadline stops the whole run if anything hangs.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fullSession } from './lib/pop3-client.mjs';

const { values: opts } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    src: { type: 'boolean', default: false },
    silent: { type: 'string', default: '4000' },
    slow: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    'baseline-seconds': { type: 'string', default: '3' },
    'warmup-seconds': { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '4' },
    messages: { type: 'string', default: '10' },
    'message-bytes': { type: 'string', default: '4096' },
    'max-connections': { type: 'string' },
    'login-timeout-ms': { type: 'string' },
  },
});
const PASSWORD = 'flood-bench-pw';
const PER_IP = 20; // Poplar's default maxConnectionsPerIp, kept
const honestUser = (i) => `honest${i}`;

if (opts.serve) await serve();
else await main();

// ---------------------------------------------------------------------------------------------
// The server (child process)

async function serve() {
  const lib = await import(opts.src ? '../src/index.ts' : '../build/src/index.js');
  const users = Number(opts.concurrency);
  const body = `${'z'.repeat(78)}\r\n`.repeat(Math.ceil(Number(opts['message-bytes']) / 80));
  const mailboxes = {};
  const passwords = {};
  for (let u = 0; u < users; u++) {
    passwords[honestUser(u)] = PASSWORD;
    mailboxes[honestUser(u)] = Array.from(
      { length: Number(opts.messages) },
      (_, m) => `Subject: message ${m}\r\n\r\n${body}`,
    );
  }
  const server = lib.createServer({
    authenticator: new lib.StaticAuthenticator(passwords),
    store: new lib.MemoryStore(mailboxes),
    limits: {
      maxConnections: Number(opts['max-connections']),
      loginTimeoutMs: Number(opts['login-timeout-ms']),
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', (message) => {
    if (message === 'stats') {
      const { stats } = server;
      process.send({
        connectionsOpen: stats.connectionsOpen,
        connectionsTotal: stats.connectionsTotal,
        connectionsRefused: stats.connectionsRefused,
        loginsSucceeded: stats.loginsSucceeded,
        rssMb: process.memoryUsage().rss / 1048576,
        heapMb: process.memoryUsage().heapUsed / 1048576,
        limits: {
          maxConnections: server.limits.maxConnections,
          maxConnectionsPerIp: server.limits.maxConnectionsPerIp,
          loginTimeoutMs: server.limits.loginTimeoutMs,
        },
      });
    } else if (message === 'stop') {
      void server.close({ graceMs: 0 }).then(() => {
        process.disconnect();
      });
    }
  });
  process.send({ port });
}

// ---------------------------------------------------------------------------------------------
// The load generator (this process)

async function main() {
  const silent = Number(opts.silent);
  const slow = Number(opts.slow);
  const floodCount = silent + slow;
  const seconds = Number(opts.seconds);
  const baselineSeconds = Number(opts['baseline-seconds']);
  const warmupSeconds = Number(opts['warmup-seconds']);
  const concurrency = Number(opts.concurrency);
  const maxConnections = floodCount + concurrency + 100;
  const budgetSeconds = warmupSeconds + baselineSeconds + seconds + 120;
  const loginTimeoutMs = budgetSeconds * 1000;
  const deadline = setTimeout(() => {
    console.error('flood: deadline passed, giving up');
    child.kill('SIGKILL');
    process.exit(2);
  }, budgetSeconds * 1000);
  deadline.unref();

  const child = fork(
    fileURLToPath(import.meta.url),
    [
      '--serve',
      ...(opts.src ? ['--src'] : []),
      '--concurrency',
      String(concurrency),
      '--messages',
      opts.messages,
      '--message-bytes',
      opts['message-bytes'],
      '--max-connections',
      String(maxConnections),
      '--login-timeout-ms',
      String(loginTimeoutMs),
    ],
    { execArgv: opts.src ? ['--import', 'tsx'] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const ask = async (message) => {
    const reply = once(child, 'message');
    child.send(message);
    return (await reply)[0];
  };
  const [{ port }] = await once(child, 'message');
  console.log(
    `flood: server pid ${child.pid} on 127.0.0.1:${port} (${opts.src ? 'sources via tsx' : 'build'})`,
  );

  // Warm-up (not counted: the server's code is not optimised yet), then the baseline with no flood.
  await honestRun(port, concurrency, timeFor(warmupSeconds));
  const baseline = await honestRun(port, concurrency, timeFor(baselineSeconds));

  // The flood, spread over source addresses: PER_IP connections from each.
  // Honest sessions go on while the flood connects, too (the ramp).
  const started = performance.now();
  let isRamping = true;
  const rampRun = honestRun(port, concurrency, () => isRamping);
  const flood = await openFlood(port, silent, slow);
  isRamping = false;
  const ramp = await rampRun;
  const openMs = performance.now() - started;
  console.log(
    `flood: ${flood.connected} connected (${silent} silent, ${slow} slow) from ${flood.addresses} addresses ` +
      `in ${(openMs / 1000).toFixed(1)} s; ${flood.refused} refused, ${flood.failed} failed` +
      (flood.firstError === undefined ? '' : ` (${flood.firstError})`),
  );
  let trickled = 0;
  let turn = 0;
  // Every 100 ms a tenth of the slow sockets sends one byte: one byte a second each, never a CRLF.
  const trickle = setInterval(() => {
    for (let i = turn % 10; i < flood.slowSockets.length; i += 10) {
      const socket = flood.slowSockets[i];
      if (!socket.destroyed) {
        socket.write('x');
        trickled += 1;
      }
    }
    turn += 1;
  }, 100);

  const during = await honestRun(port, concurrency, timeFor(seconds));
  const stats = await ask('stats');
  const dropped = flood.sockets.filter((s) => s.destroyed).length;
  clearInterval(trickle);

  console.log('');
  report('honest sessions, no flood', baseline);
  report(`honest sessions while the flood connects (${(openMs / 1000).toFixed(1)} s)`, ramp);
  report(`honest sessions, ${flood.connected} flood connections open`, during);
  console.log(
    `server: ${stats.connectionsOpen} connections open at the end of the run, ${stats.connectionsRefused} refused, ` +
      `RSS ${stats.rssMb.toFixed(0)} MB, heap ${stats.heapMb.toFixed(0)} MB; limits ${JSON.stringify(stats.limits)}`,
  );
  console.log(`flood: ${trickled} bytes trickled, ${dropped} flood connections dropped during the run`);
  const p99 = percentile(during.ms, 0.99);
  const isMet = during.errors === 0 && during.ms.length > 0 && p99 < 100;
  console.log(`target p99 < 100 ms under the flood: ${isMet ? 'met' : 'NOT met'} (${p99.toFixed(1)} ms)`);

  for (const socket of flood.sockets) socket.destroy();
  const exited = once(child, 'exit');
  child.send('stop');
  const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(kill);
  clearTimeout(deadline);
  process.exitCode = isMet ? 0 : 1;
}

/** Opens the flood: resolves once every connection has its greeting, a refusal or an error. */
async function openFlood(port, silent, slow) {
  const total = silent + slow;
  const sockets = [];
  const slowSockets = [];
  let connected = 0;
  let refused = 0;
  let failed = 0;
  let firstError;
  const addressOf = (i) => {
    const n = Math.floor(i / PER_IP); // 250 addresses per /24, from 127.1.0.1 on
    return `127.1.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  };
  const open = (i) =>
    new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: addressOf(i) });
      let text = '';
      const done = (outcome, error) => {
        socket.removeAllListeners('data');
        if (outcome === 'connected') {
          connected += 1;
          sockets.push(socket);
          if (i >= silent) slowSockets.push(socket);
        } else {
          if (outcome === 'refused') refused += 1;
          else {
            failed += 1;
            firstError ??= error;
          }
          socket.destroy();
        }
        resolve();
      };
      socket.setEncoding('latin1');
      socket.on('data', (chunk) => {
        text += chunk;
        if (!text.includes('\r\n')) return;
        done(text.startsWith('+OK') ? 'connected' : 'refused');
      });
      // Flood sockets never read after the greeting; errors and closes are counted at the end.
      socket.on('error', (error) => {
        if (!socket.listenerCount('data')) return;
        done('failed', error.message);
      });
    });
  const BATCH = 200;
  for (let i = 0; i < total; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, total - i) }, (_, k) => open(i + k)));
  }
  return {
    sockets,
    slowSockets,
    connected,
    refused,
    failed,
    firstError,
    addresses: Math.ceil(total / PER_IP),
  };
}

/** A condition that holds for `seconds` from now. */
function timeFor(seconds) {
  const end = performance.now() + seconds * 1000;
  return () => performance.now() < end;
}

/** `concurrency` clients running full sessions back to back while `goOn()`; each its own maildrop. */
async function honestRun(port, concurrency, goOn) {
  const times = [];
  let errors = 0;
  let firstError;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      while (goOn()) {
        try {
          const result = await fullSession(port, honestUser(c), PASSWORD, { timeoutMs: 10_000 });
          times.push(result.ms);
        } catch (error) {
          errors += 1;
          firstError ??= error.message;
        }
      }
    }),
  );
  return { ms: times, errors, firstError };
}

function percentile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function report(title, run) {
  const f = (q) => percentile(run.ms, q).toFixed(1);
  console.log(
    `${title}: ${run.ms.length} sessions, p50 ${f(0.5)} ms, p99 ${f(0.99)} ms, max ${f(1)} ms, ` +
      `${run.errors} errors${run.firstError === undefined ? '' : ` (${run.firstError})`}`,
  );
}
