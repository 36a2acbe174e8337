// Up to 100,000 idle logged-in sessions (issue 13). Every process here may hold at most 20,000
// descriptors, so the sessions are spread: over generator processes (idle-generator.mjs, at most
// PER_GENERATOR sessions each, each from its own source address in 127.0.0.0/8, since ephemeral ports
// are per source address) and over the server's processes (Poplar: one worker per PER_GENERATOR
// sessions; Dovecot: one pop3 process per session). Each run starts its own server on its own
// fixture set (one empty maildrop per session: the POP3 lock allows one session per maildrop), logs
// the sessions in at a bounded rate, stops adding when the machine's available memory falls under
// MIN_AVAILABLE_MB or logins keep failing, then measures the servers' memory per held session and
// fresh full sessions meanwhile.
import { fork, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { PASSWORD, SESSION_USERS, sessionUser } from './fixtures.mjs';
import { fullSession } from './pop3-client.mjs';
import { processTree, treeCpuSeconds, treePssMb, treeRssMb } from './proc.mjs';
import { percentile } from './scenarios.mjs';
import { startDovecot, startPoplar } from './servers.mjs';

/** Sessions per generator process and per Poplar worker: under the 20,000-descriptor limit. */
export const PER_GENERATOR = 15_000;
/** Stop adding sessions when the machine has less memory available than this. */
export const MIN_AVAILABLE_MB = 3 * 1024;
/** Stop adding sessions after this many failed logins (e.g. Dovecot unable to fork). */
const MAX_FAILURES = 200;
/** Stop adding sessions when none was added for this long. */
const STALL_MS = 30_000;

export const manyUser = (i) => `many${String(i).padStart(6, '0')}`;
const VERSION = 'poplar-bench-idle-many 2';

export function availableMb() {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'latin1'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/**
 * The fixture set: hard links to the session users' maildrops (for the fresh sessions), in
 * `$TMPDIR/poplar-bench-fixtures-idle-many`, and the names of `n` idle users whose maildrops do not
 * exist yet: both servers create an empty Maildir at a user's first login (400,000 directories made
 * here and copied into each server's tree took minutes; at login each server makes its own).
 */
export async function ensureManyFixtures(main, n, log = console.error) {
  const base = join(tmpdir(), 'poplar-bench-fixtures-idle-many');
  const root = join(base, 'mail');
  const marker = join(base, 'complete');
  if (!existsSync(marker) || (await readFile(marker, 'utf8')).trim() !== VERSION) {
    log('fixtures: session maildrops for the idle-many scenario');
    await rm(base, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    for (let i = 0; i < SESSION_USERS; i++) {
      const r = spawnSync('cp', ['-al', join(main.root, sessionUser(i)), join(root, sessionUser(i))]);
      if (r.status !== 0) throw new Error(`cp -al ${sessionUser(i)} failed`);
    }
    await writeFile(marker, `${VERSION}\n`);
  }
  const users = Array.from({ length: SESSION_USERS }, (_, i) => sessionUser(i));
  for (let i = 0; i < n; i++) users.push(manyUser(i));
  return { root, users };
}

/** Dovecot's limits raised for many sessions (added to its high-performance mode's settings). */
function dovecotManyConf(n) {
  const limit = n + 2000;
  return `
default_process_limit = ${limit}
default_client_limit = ${limit}
service pop3 {
  process_limit = ${limit}
  client_limit = 1
}
service pop3-login {
  process_limit = 64
  client_limit = 1000
}
service anvil {
  client_limit = ${limit}
}
# The stats process holds a descriptor per pop3 process: it would stop Dovecot at 20,000.
stats_writer_socket_path =
service auth {
  client_limit = ${limit}
}
`;
}

/** Descriptors held by the busiest process of the tree, and by the tree's first process. */
function descriptors(root) {
  let max = 0;
  let first = 0;
  for (const pid of processTree(root)) {
    let count;
    try {
      count = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      continue; // gone
    }
    if (pid === root) first = count;
    max = Math.max(max, count);
  }
  return { max, first };
}

let runNo = 0;

/** Forks the generators and logs `n` sessions in; resolves once all are held or adding stopped. */
async function rampUp(port, n, { rate, log }) {
  const count = Math.ceil(n / PER_GENERATOR);
  // A new second octet each run: the last run's sockets may linger in TIME_WAIT on its addresses.
  const octet = 1 + (runNo++ % 250);
  const gens = [];
  for (let g = 0; g < count; g++) {
    const child = fork(join(import.meta.dirname, 'idle-generator.mjs'), [], { stdio: 'inherit' });
    const gen = { child, progress: { live: 0, opened: 0, failed: 0, dropped: 0 }, closed: false };
    child.on('message', (msg) => {
      if (msg.kind === 'progress') gen.progress = msg;
      else if (msg.kind === 'closed') gen.closed = true;
    });
    child.on('exit', (code) => {
      if (!gen.closed) gen.died = `generator ${g} exited (${code})`;
      gen.closed = true;
    });
    const users = [];
    for (let i = g; i < n; i += count) users.push(manyUser(i));
    child.send({
      kind: 'start',
      port,
      host: '127.0.0.1',
      address: `127.${octet}.${g + 1}.1`,
      users,
      password: PASSWORD,
      rate: rate / count,
      // 64 logins under way in all: a server slowed by the machine's load queues few, none for 60 s.
      inFlight: Math.ceil(64 / count),
      noopMs: 240_000,
    });
    gens.push(gen);
  }
  const sum = (key) => gens.reduce((a, g) => a + (g.progress[key] ?? 0), 0);
  const t0 = performance.now();
  let stoppedBy = 'all logged in';
  // The stall rule watches sessions held, not logins: a server past its limits (Dovecot's auth
  // process at its descriptor limit) may leave logins hanging without failing them.
  let lastLive = 0;
  let lastChange = t0;
  let lastLog = t0;
  for (;;) {
    await delay(250);
    const opened = sum('opened');
    const failed = sum('failed');
    const now = performance.now();
    const liveNow = sum('live');
    if (liveNow > lastLive) {
      lastLive = liveNow;
      lastChange = now;
    }
    if (now - lastLog > 10_000) {
      lastLog = now;
      log(`  ${sum('live')} held, ${failed} failed, ${availableMb().toFixed(0)} MB available`);
    }
    if (opened + failed >= n) break;
    const died = gens.find((g) => g.died !== undefined);
    if (died !== undefined) {
      for (const g of gens) g.child.kill();
      throw new Error(died.died);
    }
    const avail = availableMb();
    if (avail < MIN_AVAILABLE_MB) stoppedBy = `available memory ${avail.toFixed(0)} MB`;
    else if (failed >= MAX_FAILURES) stoppedBy = `${failed} failed logins`;
    else if (now - lastChange > STALL_MS) stoppedBy = `no more sessions held for ${STALL_MS / 1000} s`;
    else continue;
    for (const g of gens) g.child.send({ kind: 'halt' });
    // Logins under way finish (or time out) before the figures are taken.
    while (sum('inFlight') > 0 && performance.now() - now < 70_000) await delay(250);
    break;
  }
  const loginS = (performance.now() - t0) / 1000;
  const firstError = gens.map((g) => g.progress.firstError).find((e) => e !== undefined);
  return {
    gens,
    loginS,
    stoppedBy,
    firstError,
    live: () => sum('live'),
    failed: sum('failed'),
    async close() {
      for (const g of gens) g.child.send({ kind: 'close' });
      const deadline = Date.now() + 60_000;
      while (gens.some((g) => !g.closed) && Date.now() < deadline) await delay(100);
      for (const g of gens) g.child.kill();
    },
  };
}

/**
 * The scenario for one server kind (`server.name`): starts its own server for `n` sessions, holds
 * as many as the machine allows, and returns the figures. `fresh` full sessions are timed while held.
 */
export async function idleMany(server, { n, fresh, repo, fixtures, rate = 2000, log = console.error }) {
  if (server.name === 'dovecot') {
    log("  idle-100k: Dovecot's default mode skipped (its high-performance mode, dovecot-hp, is measured)");
    return {};
  }
  const many = await ensureManyFixtures(fixtures, n, log);
  const isPoplar = server.name === 'poplar';
  const workers = Math.max(2, Math.ceil(n / PER_GENERATOR));
  const own = isPoplar
    ? await startPoplar({
        repo,
        fixtures: many,
        workers,
        limits: { maxConnections: n + 2000, maxConnectionsPerIp: PER_GENERATOR + 1000 },
      })
    : await startDovecot({ fixtures: many, mode: 'hp', extraConf: dovecotManyConf(n) });
  try {
    // The session users' maildrops are opened once, so the fresh sessions find built indexes.
    for (let i = 0; i < SESSION_USERS; i++)
      await fullSession(own.port, sessionUser(i), PASSWORD, { retr: false, timeoutMs: 60_000 });
    await delay(500);
    const procs0 = processTree(own.pid).length;
    const avail0 = availableMb();
    const pss0 = treePssMb(own.pid);
    const rss0 = treeRssMb(own.pid);
    const cpu0 = treeCpuSeconds(own.pid);
    const ramp = await rampUp(own.port, n, { rate, log });
    const cpuS = treeCpuSeconds(own.pid) - cpu0;
    await delay(1000);
    const held = ramp.live();
    const avail1 = availableMb();
    const pss1 = treePssMb(own.pid);
    const rss1 = treeRssMb(own.pid);
    const fds = descriptors(own.pid);
    const procs = processTree(own.pid).length;
    const times = [];
    let freshErrors = 0;
    let firstError = ramp.firstError;
    // A server past its limits may accept and then never answer (Dovecot's auth process at its
    // descriptor limit): 5 failures in a row end the fresh sessions, not 200 timeouts.
    let failedInRow = 0;
    for (let i = 0; i < fresh && failedInRow < 5; i++) {
      try {
        times.push((await fullSession(own.port, sessionUser(i % SESSION_USERS), PASSWORD)).ms);
        failedInRow = 0;
      } catch (err) {
        freshErrors++;
        failedInRow++;
        firstError ??= err.message;
      }
    }
    const stillHeld = ramp.live();
    await ramp.close();
    // Dovecot: one pop3 process per session, each ending on its own before the server stops.
    const deadline = Date.now() + 120_000;
    while (processTree(own.pid).length > procs0 + 2 && Date.now() < deadline) await delay(500);
    log(
      `  ${own.name}: ${held} of ${n} held (${ramp.stoppedBy}); ${stillHeld} still held after the fresh sessions`,
    );
    if (firstError !== undefined) log(`  ${own.name}: idle-many: first error: ${firstError}`);
    const perSession = (mb) => (held > 0 ? (mb * 1024) / held : NaN);
    return {
      'sessions held': held,
      'KB/session (PSS)': perSession(pss1 - pss0),
      'KB/session (RSS)': perSession(rss1 - rss0),
      'KB/session (machine)': perSession(avail0 - avail1),
      'server processes': procs,
      'max fds/process': fds.max,
      'fds of primary/master': fds.first,
      'logins/s': held / ramp.loginS,
      'server CPU ms/login': held > 0 ? (cpuS * 1000) / held : NaN,
      'fresh p50 ms': percentile(times, 50),
      'fresh p99 ms': percentile(times, 99),
      'failed logins': ramp.failed,
      'dropped sessions': held - stillHeld,
      errors: freshErrors,
    };
  } finally {
    await own.stop();
  }
}
