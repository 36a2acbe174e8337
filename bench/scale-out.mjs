// What running several nodes costs (issue 14): the Redis round trips (maildrop lease, connection
// counts, throttle) and a PostgreSQL user lookup added to each login, and full sessions per second
// through HAProxy (send-proxy-v2) with one node and with three nodes on one mail root.
// Usage: npm run build && node bench/scale-out.mjs [--quick] [--runs N]
// Private Redis, PostgreSQL and HAProxy instances on loopback ports (the tests' harnesses, from the
// build), stopped before exit. Figures are medians of N runs (default 3); CPU is summed over each
// process tree (Poplar's nodes, redis-server, the postmaster and its backends, haproxy).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PASSWORD, SESSION_USERS, ensureFixtures, linkTree, sessionUser } from './lib/fixtures.mjs';
import { fullSession, poll } from './lib/pop3-client.mjs';
import { treeCpuSeconds } from './lib/proc.mjs';
import { percentile, warmUp } from './lib/scenarios.mjs';
import { startPoplar } from './lib/servers.mjs';

const { values: opts } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, runs: { type: 'string' } },
});
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(opts.runs ?? 3);
const durationMs = opts.quick ? 3000 : 10_000;
const CLIENTS = 10;
const log = (msg) => console.error(msg);
const engine = async (name) =>
  import(pathToFileURL(join(repo, 'build/test/helpers/engines', `${name}.js`)).href);

// The harnesses register their clean-ups on a test context; here, on this list, run last first.
const cleanups = [];
const context = { after: (fn) => cleanups.push(fn) };
async function cleanUp() {
  while (cleanups.length > 0)
    await cleanups
      .pop()()
      .catch((err) => log(`clean-up: ${err.message}`));
}

/** The pid listening on a loopback TCP port (an engine's main process). */
function listenerPid(port) {
  const out = execFileSync('ss', ['-Htlnp', `sport = :${port}`]).toString();
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (pid === undefined) throw new Error(`nothing listens on ${port}`);
  return Number(pid);
}

const median = (values) => percentile(values, 50);
const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** `CLIENTS` loops of `step(i, k)` for durationMs; CPU of `pids` over the span; latencies of each step. */
async function loop(pids, step) {
  const cpu0 = pids.map(treeCpuSeconds);
  const times = [];
  let errors = 0;
  let firstError;
  const t0 = performance.now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let k = 0; performance.now() < end; k++) {
        try {
          times.push(await step(c, k));
        } catch (err) {
          errors++;
          firstError ??= err.message;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = pids.map((pid, i) => treeCpuSeconds(pid) - (cpu0[i] ?? 0));
  const n = times.length;
  return {
    perSecond: n / seconds,
    cpuMs: cpu.map((s) => (s * 1000) / Math.max(1, n)),
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    errors,
    firstError,
  };
}

/** The user of client c's k-th step: each client has its own users (one session per maildrop). */
const userOf = (c, k) => sessionUser((c + k * CLIENTS) % SESSION_USERS);

async function loginCost(fixtures, redis, postgres, passwordFile) {
  const variants = [
    { id: 'file', title: 'users file, one node' },
    { id: 'file+redis', title: 'users file, --cluster (Redis)', cluster: true },
    { id: 'postgresql', title: 'users in PostgreSQL', pg: true },
    { id: 'postgresql+redis', title: 'users in PostgreSQL, --cluster', pg: true, cluster: true },
  ];
  const results = new Map(variants.map((v) => [v.id, []]));
  for (let run = 0; run < runs; run++) {
    for (const v of variants) {
      const server = await startPoplar({
        repo,
        fixtures,
        workers: 1,
        // Every login checks its password, from the file as from the database: the difference is the lookup.
        limits: { authCacheMaxEntries: 0 },
        ...(v.pg
          ? { users: postgres.url(), toml: `[userdb]\npasswordFile = ${JSON.stringify(passwordFile)}\n` }
          : {}),
        args: v.cluster ? ['--cluster', redis.url, '--node-name', 'bench1'] : [],
      });
      try {
        await warmUp(server, fixtures.users.slice(0, SESSION_USERS));
        const pids = [server.pid, listenerPid(redis.port), listenerPid(postgres.port)];
        const r = await loop(pids, async (c, k) => (await poll(server.port, userOf(c, k), PASSWORD)).ms);
        results.get(v.id).push(r);
        log(`login cost run ${run + 1} ${v.id}: ${fmt(r.perSecond, 0)} logins/s, errors ${r.errors}`);
      } finally {
        await server.stop();
      }
    }
  }
  console.log(
    `\n## Cost per login (USER, PASS, STAT, QUIT one at a time, ${CLIENTS} clients, medians of ${runs})\n`,
  );
  console.log(
    '| users, state | logins/s | Poplar CPU ms | Redis CPU ms | PostgreSQL CPU ms | total CPU ms | +CPU vs file | p50 ms | +p50 vs file | p99 ms | errors |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const row = (id) => {
    const rs = results.get(id);
    const cpu = [0, 1, 2].map((i) => median(rs.map((r) => r.cpuMs[i])));
    return {
      perSecond: median(rs.map((r) => r.perSecond)),
      cpu,
      total: cpu.reduce((a, b) => a + b, 0),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      firstError: rs.find((r) => r.firstError !== undefined)?.firstError,
    };
  };
  const base = row('file');
  for (const v of variants) {
    const r = row(v.id);
    console.log(
      `| ${v.title} | ${fmt(r.perSecond, 0)} | ${fmt(r.cpu[0])} | ${fmt(r.cpu[1])} | ${fmt(r.cpu[2])} | ${fmt(r.total)} | ${fmt(r.total - base.total)} | ${fmt(r.p50)} | ${fmt(r.p50 - base.p50)} | ${fmt(r.p99)} | ${r.errors}${r.firstError ? ` (${r.firstError})` : ''} |`,
    );
  }
}

async function throughHaproxy(fixtures, redis) {
  const { startHaproxy } = await engine('haproxy');
  const mailDir = await mkdtemp(join(tmpdir(), 'poplar-bench-scale-'));
  const mail = join(mailDir, 'mail');
  linkTree(fixtures.root, mail);
  const variants = [
    { id: 'direct-1', title: '1 node, direct (no HAProxy, no Redis)', nodes: 1, direct: true },
    { id: 'haproxy-1', title: '1 node behind HAProxy, --cluster', nodes: 1 },
    { id: 'haproxy-3', title: '3 nodes behind HAProxy, --cluster', nodes: 3 },
  ];
  const results = new Map(variants.map((v) => [v.id, []]));
  try {
    for (let run = 0; run < runs; run++) {
      for (const v of variants) {
        const nodes = [];
        try {
          for (let i = 0; i < v.nodes; i++)
            nodes.push(
              await startPoplar({
                repo,
                fixtures,
                workers: 1,
                mail,
                args: v.direct
                  ? []
                  : [
                      '--cluster',
                      redis.url,
                      '--node-name',
                      `bench${i + 1}`,
                      '--proxy-protocol-from',
                      '127.0.0.2/32',
                    ],
              }),
            );
          let port = nodes[0].port;
          const pids = nodes.map((n) => n.pid);
          if (!v.direct) {
            const balancer = await startHaproxy(context, {
              servers: nodes.map((n, i) => ({ name: `pop${i + 1}`, host: '127.0.0.1', port: n.port })),
              proxy: 'v2',
              balance: 'leastconn',
              // From 127.0.0.2, the one address the nodes take PROXY headers from.
              backendLines: ['source 127.0.0.2'],
            });
            port = balancer.port;
            pids.push(listenerPid(balancer.port), listenerPid(redis.port));
          }
          await warmUp({ port }, fixtures.users.slice(0, SESSION_USERS));
          const r = await loop(
            pids,
            async (c, k) => (await fullSession(port, userOf(c, k), PASSWORD, { serial: true })).ms,
          );
          results.get(v.id).push(r);
          log(`haproxy run ${run + 1} ${v.id}: ${fmt(r.perSecond, 0)} sessions/s, errors ${r.errors}`);
        } finally {
          await cleanUp();
          for (const n of nodes) await n.stop();
        }
      }
    }
  } finally {
    await rm(mailDir, { recursive: true, force: true });
  }
  console.log(
    `\n## Full sessions through HAProxy (one command at a time, ${CLIENTS} clients, medians of ${runs})\n`,
  );
  console.log('| setup | sessions/s | CPU ms/session (nodes + HAProxy + Redis) | p50 ms | p99 ms | errors |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const v of variants) {
    const rs = results.get(v.id);
    const total = median(rs.map((r) => r.cpuMs.reduce((a, b) => a + b, 0)));
    const errors = rs.reduce((a, r) => a + r.errors, 0);
    const first = rs.find((r) => r.firstError !== undefined)?.firstError;
    console.log(
      `| ${v.title} | ${fmt(median(rs.map((r) => r.perSecond)), 0)} | ${fmt(total)} | ${fmt(median(rs.map((r) => r.p50)))} | ${fmt(median(rs.map((r) => r.p99)))} | ${errors}${first ? ` (${first})` : ''} |`,
    );
  }
}

const fixtures = await ensureFixtures({ log });
console.log(
  `# Scale-out bench: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
);
try {
  const { startRedis } = await engine('redis');
  const { startPostgres, writePasswordFile } = await engine('postgres');
  const redis = await startRedis(context);
  const postgres = await startPostgres(context);
  await postgres.createMailboxTable();
  for (const user of fixtures.users) await postgres.addMailbox(user, `{PLAIN}${PASSWORD}`);
  const pwDir = await mkdtemp(join(tmpdir(), 'poplar-bench-pw-'));
  cleanups.push(() => rm(pwDir, { recursive: true, force: true }));
  const passwordFile = await writePasswordFile(pwDir, postgres);
  const engines = cleanups.length;
  await loginCost(fixtures, redis, postgres, passwordFile);
  // The HAProxy scenario's clean-ups come after the engines': keep those until the end.
  const kept = cleanups.splice(0, engines);
  try {
    await throughHaproxy(fixtures, redis);
  } finally {
    // Even when it fails: the engines are stopped by the last clean-up below.
    cleanups.unshift(...kept);
  }
} finally {
  await cleanUp();
}
