// The scenarios of issue 5. Each takes a started server ({ name, port, pid, dropIndex }) and
// resolves to a flat object of figures. All are bounded in time and count.
import { performance } from 'node:perf_hooks';
import { Pop3Conn, command, fullSession, parseList, poll } from './pop3-client.mjs';
import {
  COLD_USERS,
  HUGE_USER,
  PASSWORD,
  PIPE_USER,
  PIPELINE_MESSAGES,
  SESSION_USERS,
  bigUser,
  coldUser,
  hashedUser,
  idleUser,
  sessionUser,
} from './fixtures.mjs';
import { processTree, resetPeaks, sampleRss, treeCpuSeconds, treePssMb, treeRssMb } from './proc.mjs';
import { setTimeout as delay } from 'node:timers/promises';

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Generator CPU over a span: `()` gives it as a percentage of one core, `.ms()` in milliseconds.
 * The generator shares the machine's cores with the server, so its CPU per session counts too.
 */
function generatorMeter() {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const ms = () => {
    const d = process.cpuUsage(cpu0);
    return (d.user + d.system) / 1000;
  };
  const percent = () => (ms() / (performance.now() - t0)) * 100;
  percent.ms = ms;
  return percent;
}

/**
 * Opens each maildrop once (STAT only) so that both servers have built their size index or
 * cache before timing: the cold open has its own scenario (big maildrop).
 */
export async function warmUp(server, users) {
  for (const user of users) {
    await fullSession(server.port, user, PASSWORD, { retr: false, timeoutMs: 120_000 });
  }
}

/**
 * `clients` loops of full sessions for `durationMs`; each client owns its users (the POP3 lock).
 * `serial`: each client sends one command at a time (see fullSession), else pipelined. `user`:
 * the i-th user's name (sessionUser: `{PLAIN}` passwords, hashedUser: hashed).
 */
export async function sessions(
  server,
  { clients, durationMs, serial = false, user: userName = sessionUser },
) {
  const times = [];
  let bytes = 0;
  let errors = 0;
  let firstError;
  const cpu0 = treeCpuSeconds(server.pid);
  const gen = generatorMeter();
  const t0 = performance.now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let k = 0; performance.now() < end; k++) {
        const user = userName((c + k * clients) % SESSION_USERS);
        try {
          const r = await fullSession(server.port, user, PASSWORD, { serial });
          times.push(r.ms);
          bytes += r.bytes;
        } catch (err) {
          errors++;
          firstError ??= err.message;
          await delay(10);
        }
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = treeCpuSeconds(server.pid) - cpu0;
  const genMs = gen.ms();
  const genPercent = gen();
  if (firstError !== undefined) console.error(`  ${server.name}: first error: ${firstError}`);
  return {
    'sessions/s': times.length / wallS,
    'server CPU ms/session': (cpuS * 1000) / times.length,
    'server CPU %': (cpuS / wallS) * 100,
    'MB/s': bytes / 1e6 / wallS,
    'p50 ms': percentile(times, 50),
    'p99 ms': percentile(times, 99),
    errors,
    'generator CPU %': genPercent,
    'generator CPU ms/session': genMs / times.length,
  };
}

/** `clients` parallel RETRs of the 100 MB message (one maildrop each, hard links to one file). */
export async function largeRetr(server, { clients }) {
  const base = treeRssMb(server.pid);
  resetPeaks(server.pid);
  const sampler = sampleRss(server.pid);
  const cpu0 = treeCpuSeconds(server.pid);
  const gen = generatorMeter();
  const t0 = performance.now();
  let bytes = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      try {
        // Not `bytes += await …`: that would read `bytes` before the await.
        const r = await fullSession(server.port, bigUser(i), PASSWORD, { timeoutMs: 120_000 });
        bytes += r.bytes;
      } catch (err) {
        errors++;
        console.error(`  ${server.name}: large RETR: ${err.message}`);
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const peak = sampler.stop();
  const cpuS = treeCpuSeconds(server.pid) - cpu0;
  return {
    'MB/s': bytes / 1e6 / wallS,
    'server CPU %': (cpuS / wallS) * 100,
    'peak RSS MB': peak,
    'RSS growth MB': peak - base,
    errors,
    'generator CPU %': gen(),
  };
}

/** Times `fn` and the server's CPU over it: { ms, cpuMs, value }. */
async function measured(server, fn) {
  const cpu0 = treeCpuSeconds(server.pid);
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  return { ms, cpuMs: (treeCpuSeconds(server.pid) - cpu0) * 1000, value };
}

/**
 * One session on the 50,000-message maildrop, one command at a time: login+STAT+LIST timed from
 * the connection to the end of LIST, then UIDL timed on its own in the same session, then QUIT.
 */
async function hugeSession(server) {
  let conn;
  try {
    const list = await measured(server, async () => {
      conn = await Pop3Conn.open(server.port, 120_000);
      await command(conn, HUGE_USER, `USER ${HUGE_USER}`, false);
      await command(conn, HUGE_USER, `PASS ${PASSWORD}`, false);
      const stat = await command(conn, HUGE_USER, 'STAT', false);
      await command(conn, HUGE_USER, 'LIST', true);
      return Number(/^\+OK (\d+)/.exec(stat.status)?.[1]);
    });
    const uidl = await measured(server, () => command(conn, HUGE_USER, 'UIDL', true));
    await command(conn, HUGE_USER, 'QUIT', false);
    if (list.value !== 50_000) console.error(`  ${server.name}: STAT said ${list.value}`);
    return { list, uidl };
  } finally {
    conn?.close();
  }
}

/**
 * The 50,000-message maildrop, `reps` times: a first login (index deleted before) and a warm one,
 * each timing login+STAT+LIST and UIDL apart; the figures are the medians over `reps`.
 */
export async function bigMaildrop(server, { reps = 3 } = {}) {
  const samples = [];
  for (let i = 0; i < reps; i++) {
    await server.dropIndex(HUGE_USER);
    const first = await hugeSession(server);
    const warm = await hugeSession(server);
    samples.push({
      'first login+STAT+LIST ms': first.list.ms,
      'first login+STAT+LIST server CPU ms': first.list.cpuMs,
      'first UIDL ms': first.uidl.ms,
      'first UIDL server CPU ms': first.uidl.cpuMs,
      'warm login+STAT+LIST ms': warm.list.ms,
      'warm login+STAT+LIST server CPU ms': warm.list.cpuMs,
      'warm UIDL ms': warm.uidl.ms,
      'warm UIDL server CPU ms': warm.uidl.cpuMs,
    });
  }
  return Object.fromEntries(
    Object.keys(samples[0]).map((k) => [
      k,
      percentile(
        samples.map((x) => x[k]),
        50,
      ),
    ]),
  );
}

/** `clients` loops of polls (see poll) of the i-th user for `durationMs`. */
async function pollLoop(server, { clients, durationMs, user, count = Infinity }) {
  const times = [];
  let errors = 0;
  let firstError;
  const cpu0 = treeCpuSeconds(server.pid);
  const gen = generatorMeter();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() - t0 < durationMs && next < count) {
        const name = user(next++);
        try {
          times.push((await poll(server.port, name, PASSWORD)).ms);
        } catch (err) {
          errors++;
          firstError ??= err.message;
          await delay(10);
        }
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpuMs = (treeCpuSeconds(server.pid) - cpu0) * 1000;
  if (firstError !== undefined) console.error(`  ${server.name}: poll: first error: ${firstError}`);
  return {
    logins: times.length,
    perS: times.length / wallS,
    cpuMs: cpuMs / times.length,
    p50: percentile(times, 50),
    errors,
    genMs: gen.ms() / times.length,
  };
}

/** Cold users not yet used, per server: each is logged in once, so no cache has seen it. */
const coldNext = new Map();

/**
 * Clients polling every minute: repeat polls (USER, PASS, STAT, QUIT) of the same users, with
 * `{PLAIN}` passwords and with hashed ones (whose first logins, in warmUp, are behind them), then
 * first logins of `cold` hashed users never seen before. Server CPU per login decides.
 */
export async function polling(server, { clients, durationMs, cold }) {
  const plain = await pollLoop(server, { clients, durationMs, user: (i) => sessionUser(i % SESSION_USERS) });
  const hashed = await pollLoop(server, { clients, durationMs, user: (i) => hashedUser(i % SESSION_USERS) });
  const start = coldNext.get(server.name) ?? 0;
  if (start + cold > COLD_USERS) {
    console.error(`  ${server.name}: out of cold users: first logins reuse users already seen`);
  }
  coldNext.set(server.name, start + cold);
  const first = await pollLoop(server, {
    clients,
    durationMs: Infinity,
    count: cold,
    user: (i) => coldUser((start + i) % COLD_USERS),
  });
  return {
    'plain logins/s': plain.perS,
    'plain server CPU ms/login': plain.cpuMs,
    'hashed repeat logins/s': hashed.perS,
    'hashed repeat server CPU ms/login': hashed.cpuMs,
    'repeat login hashed/plain (CPU)': hashed.cpuMs / plain.cpuMs,
    'hashed first login server CPU ms': first.cpuMs,
    'plain p50 ms': plain.p50,
    'hashed repeat p50 ms': hashed.p50,
    errors: plain.errors + hashed.errors + first.errors,
    'generator CPU ms/login':
      (plain.genMs * plain.logins + hashed.genMs * hashed.logins) / (plain.logins + hashed.logins),
  };
}

/** `n` logged-in idle sessions; memory per session, then fresh full sessions meanwhile. */
export async function idle(server, { n, fresh }) {
  const pss0 = treePssMb(server.pid);
  const procs0 = processTree(server.pid).length;
  const conns = [];
  let errors = 0;
  let firstError;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < n) {
        const user = idleUser(next++);
        try {
          const conn = await Pop3Conn.open(server.port, 60_000);
          conns.push(conn);
          conn.send(`USER ${user}\r\nPASS ${PASSWORD}\r\n`);
          const [u, p] = await Promise.all([conn.expect(false), conn.expect(false)]);
          if (!u.ok || !p.ok) throw new Error(`${user}: ${p.status}`);
          conn.setTimeout(0);
        } catch (err) {
          errors++;
          firstError ??= err.message;
        }
      }
    }),
  );
  const loginS = (performance.now() - t0) / 1000;
  await delay(500);
  const pss1 = treePssMb(server.pid);
  const times = [];
  let freshErrors = 0;
  for (let i = 0; i < fresh; i++) {
    try {
      times.push((await fullSession(server.port, sessionUser(i % SESSION_USERS), PASSWORD)).ms);
    } catch (err) {
      freshErrors++;
      firstError ??= err.message;
    }
  }
  for (const conn of conns) conn.close();
  // Let the server wind down (Dovecot: one process per session) before the next scenario.
  const deadline = Date.now() + 60_000;
  while (processTree(server.pid).length > procs0 + 2 && Date.now() < deadline) await delay(200);
  if (firstError !== undefined) console.error(`  ${server.name}: idle: first error: ${firstError}`);
  return {
    'KB/idle session (PSS)': ((pss1 - pss0) * 1024) / n,
    'PSS total MB': pss1,
    'logins/s': n / loginS,
    'fresh p50 ms': percentile(times, 50),
    'fresh p99 ms': percentile(times, 99),
    errors: errors + freshErrors,
  };
}

/** 1,000 RETR in one write on one connection; replies checked against LIST sizes, in order. */
export async function pipelining(server) {
  const conn = await Pop3Conn.open(server.port, 60_000);
  try {
    conn.send(`USER ${PIPE_USER}\r\nPASS ${PASSWORD}\r\nLIST\r\n`);
    const [, pass, list] = await Promise.all([
      conn.expect(false),
      conn.expect(false),
      conn.expect(true, true),
    ]);
    if (!pass.ok || !list.ok) throw new Error(`pipelining login: ${pass.status} ${list.status}`);
    const sizes = parseList(list.body);
    let cmds = '';
    const pending = [];
    for (let n = 1; n <= PIPELINE_MESSAGES; n++) {
      cmds += `RETR ${n}\r\n`;
      pending.push(conn.expect(true));
    }
    const t0 = performance.now();
    conn.send(cmds);
    const replies = await Promise.all(pending);
    const s = (performance.now() - t0) / 1000;
    // No fixture line starts with a dot, so each body is exactly its LIST size; sizes are distinct.
    const inOrder = replies.every((r, i) => r.ok && r.bytes === sizes[i + 1]);
    // QUIT, answered once the maildrop is released: the next run must not find it in use.
    conn.send('QUIT\r\n');
    await conn.expect(false);
    return { 'msgs/s': PIPELINE_MESSAGES / s, 'in order': inOrder ? 1 : 0 };
  } finally {
    conn.close();
  }
}
