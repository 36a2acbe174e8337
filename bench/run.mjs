// Poplar vs Dovecot on the same machine, same fixtures, same run (issue 5).
// Usage: npm run bench -- [--vs-dovecot] [--quick] [--runs N] [--only a,b] [--fresh-fixtures] [--no-results]
//                         [--cpu-prof] [--workers N] [--poplar-toml TEXT]
// Runs every scenario against the servers in turn (Poplar, Dovecot in its high-performance login
// mode, Dovecot in its default mode; the order rotates each run), prints medians and the ratios
// Poplar/each Dovecot, and appends a results block to bench/RESULTS.md. Loopback only; every
// server started here is stopped before exit.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  LARGE_CLIENTS_MAX,
  PIPE_USER,
  SESSION_USERS,
  bigUser,
  ensureFixtures,
  hashedUser,
  makeHashes,
  sessionUser,
} from './lib/fixtures.mjs';
import { summariseProfiles } from './lib/profile.mjs';
import { loopbackMBps, pageCache } from './lib/raw.mjs';
import { idealRows, startIdealSender } from './lib/ideal.mjs';
import { idleMany } from './lib/idle-many.mjs';
import { bigMaildrop, idle, largeRetr, pipelining, polling, sessions, warmUp } from './lib/scenarios.mjs';
import { NOFILE_LIMIT, dovecotVersion, ensureDovecot, startDovecot, startPoplar } from './lib/servers.mjs';

const { values: opts } = parseArgs({
  options: {
    'vs-dovecot': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    only: { type: 'string' },
    'fresh-fixtures': { type: 'boolean', default: false },
    'no-results': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    workers: { type: 'string' },
    'poplar-toml': { type: 'string' },
  },
});
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = opts.quick;
const runs = Number(opts.runs ?? 3);
const profileDir = opts['cpu-prof'] ? mkdtempSync(join(tmpdir(), 'poplar-cpu-prof-')) : undefined;
const log = (msg) => {
  console.error(msg);
};

// 10,000 client sockets live in this process during the idle scenario.
spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${NOFILE_LIMIT}:${NOFILE_LIMIT}`]);

const sessionUsers = Array.from({ length: SESSION_USERS }, (_, i) => sessionUser(i));
const hashedUsers = Array.from({ length: SESSION_USERS }, (_, i) => hashedUser(i));
// Each hashed user logged in once per process of the server that keeps its own authentication
// cache (Poplar: one per worker; connections reach them round-robin, so n logins in a row reach n
// of them): the steady state of users who poll every few minutes.
const hashedWarm = (server) => hashedUsers.flatMap((u) => Array(server.authCaches ?? 1).fill(u));
const bigUsers = Array.from({ length: LARGE_CLIENTS_MAX }, (_, i) => bigUser(i));
const scenarios = [
  {
    warm: sessionUsers,
    id: 'sessions-10',
    title: 'sessions pipelined, 10 clients',
    run: (s) => sessions(s, { clients: 10, durationMs: quick ? 4000 : 10_000 }),
  },
  {
    warm: sessionUsers,
    id: 'sessions-50',
    title: 'sessions pipelined, 50 clients',
    run: (s) => sessions(s, { clients: 50, durationMs: quick ? 4000 : 10_000 }),
  },
  {
    warm: sessionUsers,
    id: 'sessions-10-serial',
    title: 'sessions one command at a time, 10 clients',
    run: (s) => sessions(s, { clients: 10, durationMs: quick ? 4000 : 10_000, serial: true }),
  },
  {
    warm: sessionUsers,
    id: 'sessions-50-serial',
    title: 'sessions one command at a time, 50 clients',
    run: (s) => sessions(s, { clients: 50, durationMs: quick ? 4000 : 10_000, serial: true }),
  },
  {
    warm: hashedWarm,
    id: 'sessions-10-hashed',
    title: 'sessions one command at a time, hashed passwords, 10 clients',
    run: (s) =>
      sessions(s, { clients: 10, durationMs: quick ? 4000 : 10_000, serial: true, user: hashedUser }),
  },
  {
    // The hashed users' first logins happen here, untimed: the timed ones are repeats.
    warm: (server) => [...sessionUsers, ...hashedWarm(server)],
    id: 'polling',
    title: 'clients polling (USER PASS STAT QUIT), 10 clients',
    run: (s) => polling(s, { clients: 10, durationMs: quick ? 3000 : 10_000, cold: quick ? 20 : 50 }),
  },
  {
    warm: bigUsers,
    id: 'retr-1',
    title: 'large RETR 100 MB, 1 client',
    run: (s) => largeRetr(s, { clients: 1 }),
    // Also run, alternately, against an ideal sendfile sender (lib/ideal.mjs).
    withIdealSender: true,
  },
  {
    warm: bigUsers,
    id: 'retr-8',
    title: 'large RETR 100 MB, 8 clients',
    run: (s) => largeRetr(s, { clients: 8 }),
  },
  {
    id: 'maildrop',
    title: 'big maildrop, 50,000 messages (median of 3)',
    run: (s) => bigMaildrop(s, { reps: 3 }),
  },
  {
    id: 'idle',
    title: `idle, ${quick ? '1,000' : '10,000'} sessions`,
    run: (s) => idle(s, { n: quick ? 1000 : 10_000, fresh: quick ? 100 : 200 }),
  },
  {
    // Its own servers and fixture set for each run (lib/idle-many.mjs); heavy, so one run.
    id: 'idle-100k',
    title: `idle, ${quick ? '2,000' : '100,000'} sessions over processes`,
    runs: 1,
    run: (s, { fixtures }) =>
      idleMany(s, { n: quick ? 2000 : 100_000, fresh: quick ? 100 : 200, repo, fixtures }),
  },
  {
    warm: [PIPE_USER],
    // Untimed runs first, on both servers: one connection's 1,000 RETRs are over in tens of
    // milliseconds, too short for Node's JIT to be warm, and each worker warms up on its own.
    warmRuns: 10,
    id: 'pipelining',
    title: 'pipelining, 1,000 RETR',
    run: (s) => pipelining(s),
  },
].filter((s) => opts.only === undefined || opts.only.split(',').includes(s.id));

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const fmt = (x) =>
  !Number.isFinite(x)
    ? '-'
    : Math.abs(x) >= 100
      ? x.toFixed(0)
      : Math.abs(x) >= 10
        ? x.toFixed(1)
        : x.toFixed(2);

const servers = [];
const stopAll = async () => {
  for (const s of servers.splice(0)) {
    try {
      await s.stop();
    } catch (err) {
      console.error(`stopping ${s.name}: ${err.message}`);
    }
  }
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

const rows = [];
const print = (row) => {
  rows.push(row);
  console.log(row.join(' | '));
};

try {
  if (opts['vs-dovecot']) ensureDovecot(log);
  const fixtures = await ensureFixtures({ fresh: opts['fresh-fixtures'], log });

  log('raw limits...');
  const loop = median([
    await loopbackMBps(quick ? 1e9 : 4e9),
    await loopbackMBps(quick ? 1e9 : 4e9),
    await loopbackMBps(quick ? 1e9 : 4e9),
  ]);
  const cache = await pageCache(fixtures.root);

  log("hashing the hashed users' passwords...");
  const hashes = await makeHashes(repo);
  log('starting servers...');
  servers.push(
    await startPoplar({
      repo,
      fixtures,
      hashes,
      cpuProfDir: profileDir,
      workers: opts.workers,
      toml: opts['poplar-toml'],
    }),
  );
  if (opts['vs-dovecot']) {
    // The high-performance login mode is the headline baseline; the default mode is kept beside it.
    servers.push(await startDovecot({ fixtures, hashes, mode: 'hp' }));
    servers.push(await startDovecot({ fixtures, hashes, mode: 'default' }));
  }

  // poplar | dovecot-hp | ratio | dovecot | ratio: each ratio is Poplar's figure over that Dovecot's.
  const columns = [servers[0].name, ...servers.slice(1).flatMap((s) => [s.name, `ratio P/${s.name}`])];
  const blank = servers.slice(1).flatMap(() => ['', '']);
  console.log(`\nscenario | figure | ${columns.join(' | ')}`);
  console.log(`---|---|${columns.map(() => '---').join('|')}`);
  print(['raw', 'loopback TCP MB/s', fmt(loop), ...blank]);
  for (const [k, v] of Object.entries(cache)) print(['raw', `page cache ${k}`, fmt(v), ...blank]);

  for (const sc of scenarios) {
    const results = servers.map(() => []);
    const ideal = sc.withIdealSender ? await startIdealSender({ fixtures }) : undefined;
    const idealResults = [];
    for (const server of servers) {
      await warmUp(server, typeof sc.warm === 'function' ? sc.warm(server) : (sc.warm ?? []));
      for (let w = 0; w < (sc.warmRuns ?? 0); w++) await sc.run(server, { fixtures });
    }
    const scRuns = sc.runs ?? runs;
    for (let r = 0; r < scRuns; r++) {
      // A B C, B C A, C A B: each run starts with a different server, so order favours none.
      const order = servers.map((_, i) => (i + r) % servers.length);
      for (const i of order) {
        log(`${sc.title}: ${servers[i].name} run ${r + 1}/${scRuns}`);
        results[i].push(await sc.run(servers[i], { fixtures }));
      }
      if (ideal !== undefined) idealResults.push(await sc.run(ideal));
    }
    await ideal?.stop();
    const keys = Object.keys(results[0][0]);
    for (const k of keys) {
      const meds = results.map((rs) => median(rs.map((x) => x[k])));
      print([sc.title, k, fmt(meds[0]), ...meds.slice(1).flatMap((m) => [fmt(m), fmt(meds[0] / m)])]);
    }
    if (ideal !== undefined) {
      for (const [k, v] of idealRows({
        servers,
        results,
        ideal: idealResults,
        loopbackMBps: loop,
        median,
        fmt,
      }))
        print([sc.title, k, v, ...blank]);
    }
  }
  if (!opts['no-results']) {
    const mem = `${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
    const cpuModel = cpus()[0]?.model ?? '?';
    const nproc = execFileSync('nproc').toString().trim();
    const header = `| scenario | figure | ${columns.join(' | ')} |\n|---|---|${columns.map(() => '---|').join('')}`;
    const block = [
      `\n## ${new Date().toISOString()} ${quick ? '(quick)' : '(full)'}`,
      '',
      `- command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``,
      `- machine: nproc ${nproc}, ${cpuModel}, memory ${mem}, node ${process.version}, dovecot ${dovecotVersion() ?? 'n/a'}`,
      `- medians of ${runs} runs, servers alternated; Poplar: compiled build, ${opts.workers === undefined ? 'default workers (one per CPU)' : `--workers ${opts.workers}`}${opts['poplar-toml'] === undefined ? '' : `, extra config \`${opts['poplar-toml'].replace(/\n/g, '; ')}\``}`,
      '- dovecot-hp: high-performance login mode (pop3-login service_count = 0, process_min_avail = nproc), pop3 service_count = 100 and process_min_avail = nproc, pop3_no_flag_updates = yes; dovecot: default mode; both with auth_cache_size = 16M',
      '',
      header,
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
    ].join('\n');
    await appendFile(join(repo, 'bench', 'RESULTS.md'), block);
    // Keep `prettier --check .` (npm run lint) passing: prettier aligns markdown tables.
    const prettier = join(repo, 'node_modules', '.bin', 'prettier');
    spawnSync(prettier, ['--write', join(repo, 'bench', 'RESULTS.md')], { stdio: 'ignore' });
    log('appended to bench/RESULTS.md');
  }
} finally {
  await stopAll();
}

if (profileDir !== undefined) {
  // Written by each Poplar process as it exits (stopAll above).
  const { files, totalMs, rows: top } = await summariseProfiles(profileDir, repo);
  console.log(
    `\nPoplar CPU profile: ${files} process(es), ${(totalMs / 1000).toFixed(1)} s sampled, by self time`,
  );
  console.log('% | ms | function | where');
  for (const row of top) console.log(row.join(' | '));
  console.log(`(profiles kept in ${profileDir}; open them in Chrome DevTools)`);
}
