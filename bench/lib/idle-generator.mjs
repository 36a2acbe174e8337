// One generator process of the idle-many scenario (forked by idle-many.mjs). It logs in a range of
// users, each on its own connection from this process's source address in 127.0.0.0/8, at most
// `rate` logins a second and `inFlight` at once, and holds the sessions open until told to close.
// A session costs this process one descriptor: the parent gives each generator under 20,000.
// Messages from the parent: { kind: 'start', port, host, address, users, password, rate, inFlight,
// noopMs }, { kind: 'halt' } (stop adding), { kind: 'close' }. To the parent: { kind: 'progress',
// live, opened, failed, dropped, firstError } every 250 ms, then { kind: 'closed' }.
import { connect } from 'node:net';
import { clearInterval, setInterval, setTimeout } from 'node:timers';

const OK = 0x2b; // '+'
const live = new Set();
let opened = 0;
let failed = 0;
let dropped = 0;
let firstError;
let halted = false;
let inFlight = 0;
let noopTimer;
/** Resolves the start loop's wait for a free login slot. */
let wakeUp;

function fail(message) {
  failed++;
  firstError ??= message;
}

/** Logs `user` in; resolves once the session is held (or failed). */
function login(opts, user) {
  return new Promise((resolve) => {
    const socket = connect({ port: opts.port, host: opts.host, localAddress: opts.address });
    let replies = 0;
    let pending = '';
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      socket.setTimeout(0);
      if (error !== undefined) {
        fail(`${user}: ${error}`);
        socket.destroy();
      } else {
        opened++;
        live.add(socket);
      }
      resolve();
    };
    socket.setTimeout(60_000, () => finish('timeout'));
    socket.on('error', (err) => finish(err.code ?? err.message));
    socket.on('close', () => {
      if (live.delete(socket)) dropped++;
      finish('closed before login');
    });
    socket.on('data', (chunk) => {
      if (done) return; // NOOP replies once held: not parsed
      pending += chunk.toString('latin1');
      for (let eol = pending.indexOf('\r\n'); eol !== -1; eol = pending.indexOf('\r\n')) {
        const line = pending.slice(0, eol);
        pending = pending.slice(eol + 2);
        if (line.charCodeAt(0) !== OK) {
          finish(line.slice(0, 80));
          return;
        }
        replies++;
        if (replies === 1) socket.write(`USER ${user}\r\nPASS ${opts.password}\r\n`);
        if (replies === 3) {
          finish();
          return;
        }
      }
    });
  });
}

async function start(opts) {
  if (opts.noopMs > 0) {
    // Below the server's idle timeout; spread over the interval would be kinder, one burst is simpler.
    noopTimer = setInterval(() => {
      for (const socket of live) socket.write('NOOP\r\n');
    }, opts.noopMs);
  }
  const t0 = Date.now();
  let k = 0;
  while (k < opts.users.length && !halted) {
    // Pacing: the k-th login starts no earlier than k / rate seconds after the first, and at most
    // `inFlight` are under way; waits are timers or completions, never polling.
    const wait = t0 + (k * 1000) / opts.rate - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else if (inFlight >= opts.inFlight) await new Promise((r) => (wakeUp = r));
    else {
      inFlight++;
      void login(opts, opts.users[k++]).finally(() => {
        inFlight--;
        wakeUp?.();
        wakeUp = undefined;
      });
    }
  }
}

const report = () => {
  process.send?.({ kind: 'progress', live: live.size, opened, failed, dropped, firstError, inFlight });
};
const reporter = setInterval(report, 250);

process.on('message', (msg) => {
  if (msg.kind === 'start') void start(msg);
  else if (msg.kind === 'halt') halted = true;
  else if (msg.kind === 'close') {
    halted = true;
    clearInterval(noopTimer);
    for (const socket of live) socket.destroy();
    live.clear();
    clearInterval(reporter);
    report();
    process.send?.({ kind: 'closed' }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
