// Starting and stopping the two servers under test, each in its own temp folder on a loopback port.
import { clearTimeout, setTimeout } from 'node:timers';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Pop3Conn } from './pop3-client.mjs';
import { addHashedUsers, linkTree, writeUsersFile } from './fixtures.mjs';

export const MAIL_USER = 'popbench';
/** Open files for the servers: 65536, or the hard limit when that is lower (containers). */
export const NOFILE_LIMIT = Math.min(
  65536,
  Number(spawnSync('sh', ['-c', 'ulimit -Hn']).stdout.toString().trim()) || 65536,
);
const NOFILE = `--nofile=${NOFILE_LIMIT}:${NOFILE_LIMIT}`;

export async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

async function waitForGreeting(port, child, logFile) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}); see ${logFile}`);
    try {
      const conn = await Pop3Conn.open(port, 2000);
      conn.close();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`server on ${port} not ready: ${err.message}`, { cause: err });
      await delay(100);
    }
  }
}

async function stopChild(child, ms = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

/**
 * Poplar from the compiled build, limits raised (`limits`: others, or higher). `toml`: more lines for
 * its config file (e.g. to turn a feature off for an A/B run). `users`: a users file or database
 * URL instead of the fixtures' file; `args`: more flags; `mail`: a mail root to share (several nodes)
 * instead of this server's own copy of the fixtures; `port`: a port instead of a free one.
 */
export async function startPoplar({
  repo,
  fixtures,
  hashes,
  cpuProfDir,
  workers,
  toml = '',
  limits = {},
  users,
  args: extraArgs = [],
  port: fixedPort,
  mail,
}) {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-bench-poplar-'));
  const mailRoot = mail ?? join(dir, 'mail');
  if (mail === undefined) {
    linkTree(fixtures.root, mailRoot);
    await addHashedUsers(mailRoot);
  }
  await writeUsersFile(join(dir, 'users'), fixtures.users, hashes);
  const raised = { maxConnectionsPerIp: 20000, maxConnections: 20000, authFailureDelayMs: 0, ...limits };
  await writeFile(
    join(dir, 'poplar.toml'),
    `[limits]\n${Object.entries(raised)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join('')}${toml}\n`,
  );
  const port = fixedPort ?? (await freePort());
  const args = [
    NOFILE,
    process.execPath,
    ...(cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir]),
    join(repo, 'bin/poplar.js'),
    ...(workers === undefined ? [] : ['--workers', String(workers)]),
    '-p',
    String(port),
    '-m',
    mailRoot,
    '--users',
    users ?? join(dir, 'users'),
    '--config',
    join(dir, 'poplar.toml'),
    '--listen',
    '127.0.0.1',
    '--monitor-port',
    '0',
    '--log-level',
    'warn',
    ...extraArgs,
  ];
  const logFile = join(dir, 'poplar.log');
  const fd = openSync(logFile, 'a');
  const child = spawn('prlimit', args, { cwd: repo, stdio: ['ignore', fd, fd] });
  try {
    await waitForGreeting(port, child, logFile);
  } catch (err) {
    await stopChild(child);
    throw new Error(`${err.message}: ${await readFile(logFile, 'utf8')}`, { cause: err });
  } finally {
    closeSync(fd);
  }
  return {
    name: 'poplar',
    port,
    pid: child.pid,
    /** Processes that each keep their own authentication cache: the workers (as config.ts counts them). */
    authCaches: Number(workers ?? Math.min(availableParallelism(), 64)),
    mailDir: (user) => join(mailRoot, user),
    /** Forgets the size index of a maildrop (first-open scenario). */
    async dropIndex(user) {
      await rm(join(mailRoot, user, '.poplar-sizes'), { force: true });
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function dovecotVersion() {
  try {
    return execFileSync('dovecot', ['--version']).toString().trim();
  } catch {
    return undefined;
  }
}

/** Installs Dovecot from Debian when missing, and creates the unprivileged mail user. */
/** Dovecot's POP3 server, from Debian's dovecot-pop3d. */
const DOVECOT_POP3 = '/usr/lib/dovecot/pop3';

export function ensureDovecot(log = console.error) {
  // dovecot-core alone (as CI installs it for doveadm) has no POP3 server: check for both.
  if (dovecotVersion() === undefined || !existsSync(DOVECOT_POP3)) {
    log('dovecot or its POP3 server missing: apt-get install dovecot-core dovecot-pop3d');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    const r = spawnSync(
      'apt-get',
      ['install', '-y', '--no-install-recommends', 'dovecot-core', 'dovecot-pop3d'],
      {
        stdio: 'inherit',
        env,
      },
    );
    if (r.status !== 0 || dovecotVersion() === undefined || !existsSync(DOVECOT_POP3))
      throw new Error('could not install dovecot');
  }
  if (spawnSync('id', [MAIL_USER]).status !== 0) {
    log(`creating system user ${MAIL_USER}`);
    const r = spawnSync('useradd', ['-M', '-s', '/usr/sbin/nologin', MAIL_USER], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`could not create user ${MAIL_USER}`);
  }
}

/**
 * Dovecot's high-performance login mode (doc.dovecot.org/2.3/admin_manual/login_processes): login
 * processes are kept and each serves many connections, one per CPU waiting. The default (high-
 * security) mode starts a pop3-login process per connection.
 */
function loginService(mode, nproc) {
  if (mode !== 'hp') return '';
  return `  service_count = 0
  process_min_avail = ${nproc}
  vsz_limit = 2G
`;
}

/**
 * The rest of Dovecot's performance-tuning page (doc.dovecot.org/2.3/configuration_manual/
 * performance_tuning), in high-performance mode only: a pop3 process serves up to 100 sessions one
 * after the other instead of being forked for each, one per CPU kept waiting, and POP3 does not
 * rename a retrieved message to record its \Seen flag ("especially pop3_no_flag_updates=yes").
 */
function pop3Tuning(mode, nproc) {
  if (mode !== 'hp') return { global: '', service: '' };
  return {
    global: 'pop3_no_flag_updates = yes\n',
    service: `  service_count = 100
  process_min_avail = ${nproc}
`,
  };
}

function dovecotConf(dir, port, mode, nproc) {
  return `protocols = pop3
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:${dir}/mail/%u
default_login_user = nobody
default_internal_user = root
default_internal_group = root
mail_uid = ${MAIL_USER}
mail_gid = ${MAIL_USER}
first_valid_uid = 1
pop3_lock_session = yes
# Room for 10,000 idle sessions (one pop3 process each) plus the load.
default_process_limit = 15000
default_client_limit = 18000
default_vsz_limit = 0
mail_max_userip_connections = 1000
# Passdb lookups cached (an hour, the default TTL). A cached hashed password is still verified at
# each login, in the auth process: auth_cache_verify_password_with_worker = yes (verifying in
# auth-worker processes) measured no better here, so it stays off (see bench/README.md).
auth_cache_size = 16M
${pop3Tuning(mode, nproc).global}service anvil {
  chroot =
  client_limit = 18000
}
# At least pop3's and pop3-login's process limits together, which doveconf counts once pop3 processes
# are reused (high-performance mode).
service auth {
  client_limit = 31000
}
# Dovecot's built-in pop3 service has process_limit = 1024, which default_process_limit does not lift.
service pop3 {
  process_limit = 15000
${pop3Tuning(mode, nproc).service}}
service pop3-login {
  chroot =
${loginService(mode, nproc)}  inet_listener pop3 {
    address = 127.0.0.1
    port = ${port}
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/users
}
userdb {
  driver = static
  args = uid=${MAIL_USER} gid=${MAIL_USER} home=${dir}/mail/%u
}
`;
}

/**
 * Dovecot in the foreground (so its master is our child), on the same files as Poplar. `mode`:
 * 'hp' for the high-performance login mode, else Dovecot's default. `extraConf`: appended to its
 * dovecot.conf (a later setting wins; a service's section may be given again).
 */
export async function startDovecot({ fixtures, hashes, mode = 'default', extraConf = '' }) {
  const dir = resolve(await mkdtemp(join(tmpdir(), 'poplar-bench-dovecot-')));
  await chmod(dir, 0o755);
  linkTree(fixtures.root, join(dir, 'mail'));
  await addHashedUsers(join(dir, 'mail'));
  const chown = spawnSync('chown', ['-R', `${MAIL_USER}:${MAIL_USER}`, join(dir, 'mail')]);
  if (chown.status !== 0) throw new Error('chown of the Dovecot mail tree failed');
  await writeUsersFile(join(dir, 'users'), fixtures.users, hashes);
  await mkdir(join(dir, 'state'));
  const port = await freePort();
  await writeFile(
    join(dir, 'dovecot.conf'),
    dovecotConf(dir, port, mode, availableParallelism()) + extraConf,
  );
  const child = spawn('prlimit', [NOFILE, 'dovecot', '-F', '-c', join(dir, 'dovecot.conf')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitForGreeting(port, child, join(dir, 'dovecot.log'));
  } catch (err) {
    await stopChild(child);
    const logText = await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${err.message}: ${logText}`, { cause: err });
  }
  return {
    name: mode === 'hp' ? 'dovecot-hp' : 'dovecot',
    port,
    pid: child.pid,
    /** One auth process, one auth cache. */
    authCaches: 1,
    mailDir: (user) => join(dir, 'mail', user),
    /** Deletes Dovecot's index files and uidlist for a maildrop (first-open scenario). */
    async dropIndex(user) {
      const mdir = join(dir, 'mail', user);
      for (const name of await readdir(mdir)) {
        if (name.startsWith('dovecot')) await rm(join(mdir, name), { force: true, recursive: true });
      }
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
