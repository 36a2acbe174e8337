// docs/scale-out.md's topology on one machine: three Poplar nodes on one mail root, behind a real
// HAProxy with send-proxy-v2, sharing a private Redis (--cluster) and users in a private PostgreSQL.
// Real clients go through the balancer from their own loopback addresses (127.0.0.0/8 is all
// loopback on Linux), and the nodes trust PROXY headers from 127.0.0.2 only, where HAProxy
// connects from. Then the failures: a node killed with SIGKILL while a DELE is pending, Redis
// restarted, PostgreSQL stopped.
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type LogEntry, type RunningDaemon } from '../helpers/daemon.js';
import { startHaproxy, type HaproxyEngine } from '../helpers/engines/haproxy.js';
import { pollUntil } from '../helpers/engines/engine-process.js';
import { startPostgres, writePasswordFile, type PostgresEngine } from '../helpers/engines/postgres.js';
import { startRedis, type RedisEngine } from '../helpers/engines/redis.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { requireBinary } from '../interop/require-binary.js';
import { clientEnv, describeRun, runClient } from '../interop/run-client.js';

const PASSWORD = 'scale-Out-pw1';
const TOKEN = 'scaleOutToken-16';
const MESSAGES = 3;
const USERS = ['curly', 'python', 'fetchy', 'mpopper', 'watched', 'killed', 'redisy', 'cached', 'unseen'];
const message = (user: string, n: number): string =>
  `From: sender@example.org\r\nTo: ${user}@example.org\r\nSubject: ${user} ${n}\r\n\r\nbody ${n} of ${user}\r\n`;

interface Cluster {
  readonly work: string;
  readonly mail: string;
  readonly redis: RedisEngine;
  readonly postgres: PostgresEngine;
  readonly nodes: RunningDaemon[];
  readonly haproxy: HaproxyEngine;
}

/** The engines, the mail root and three nodes behind HAProxy, for the whole file. */
async function startCluster(t: TestContext): Promise<Cluster> {
  const work = await tempDir(t, 'poplar-scale-out-');
  const mail = join(work, 'mail');
  await mkdir(mail);
  for (const user of USERS)
    await buildMaildir(
      mail,
      user,
      Array.from({ length: MESSAGES }, (_, i) => ({ content: message(user, i + 1) })),
    );
  const [redis, postgres] = await Promise.all([startRedis(t), startPostgres(t)]);
  await postgres.createMailboxTable();
  for (const user of USERS) await postgres.addMailbox(user, `{PLAIN}${PASSWORD}`);
  const passwordFile = await writePasswordFile(work, postgres);
  await writeFile(join(work, 'poplar.toml'), `[userdb]\npasswordFile = ${JSON.stringify(passwordFile)}\n`);
  await writeFile(join(work, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  const nodes = await Promise.all(
    [1, 2, 3].map((n) =>
      startDaemon(t, {
        args: [
          '-p',
          '0',
          '--listen',
          '127.0.0.1',
          '-m',
          mail,
          '--users',
          postgres.url(),
          '--config',
          join(work, 'poplar.toml'),
          '--admins',
          join(work, 'admins'),
          '--cluster',
          redis.url,
          '--node-name',
          `pop${n}`,
          '--proxy-protocol-from',
          '127.0.0.2/32',
          '--lock-ttl',
          '5',
          '--log-format',
          'json',
        ],
      }),
    ),
  );
  const haproxy = await startHaproxy(t, {
    servers: nodes.map((node, i) => ({ name: `pop${i + 1}`, host: '127.0.0.1', port: node.port })),
    proxy: 'v2',
    balance: 'roundrobin',
    checkIntervalMs: 500,
    checkExpect: '+OK',
    // HAProxy connects from 127.0.0.2, the nodes' one trusted source; a dead node's connection is
    // tried once more on another.
    backendLines: ['source 127.0.0.2', 'option redispatch', 'retries 2'],
  });
  return { work, mail, redis, postgres, nodes, haproxy };
}

/** Every node's log entries so far, with the node's name. */
const allLogs = (c: Cluster): (LogEntry & { node: string })[] =>
  c.nodes.flatMap((d, i) => d.logs.map((e) => ({ ...e, node: `pop${i + 1}` })));

/** The node that logged `user`'s login from `remote`, once one has (polled, bounded). */
async function loginOf(c: Cluster, user: string, remote?: string): Promise<LogEntry & { node: string }> {
  return pollUntil(() => {
    const entry = allLogs(c).find(
      (e) => e.msg === 'login' && e['user'] === user && (remote === undefined || e['remote'] === remote),
    );
    return entry === undefined
      ? Promise.reject(new Error(`no login of ${user} logged`))
      : Promise.resolve(entry);
  });
}

async function files(c: Cluster, user: string): Promise<string[]> {
  const names = await Promise.all(['new', 'cur'].map((sub) => readdir(join(c.mail, user, sub))));
  return names.flat();
}

/** A POP3 session through the balancer from `source`; resolves to the client after `PASS`'s reply. */
async function login(
  c: Cluster,
  user: string,
  source = '127.0.0.9',
): Promise<{ client: Pop3TestClient; reply: string }> {
  const client = await Pop3TestClient.connect(c.haproxy.port, c.haproxy.host, { localAddress: source });
  await client.command(`USER ${user}`);
  return { client, reply: await client.command(`PASS ${PASSWORD}`) };
}

/**
 * Logs `user` in through the balancer until it is served (polled, bounded); each refusal must
 * match `refused`. Resolves to the logged-in client and how many attempts were refused.
 */
async function loginWhenServed(
  c: Cluster,
  user: string,
  refused: RegExp,
): Promise<{ client: Pop3TestClient; refusals: number }> {
  let refusals = 0;
  const client = await pollUntil(
    async () => {
      const attempt = await login(c, user);
      if (attempt.reply.startsWith('+OK')) return attempt.client;
      attempt.client.close();
      assert.match(attempt.reply, refused);
      refusals += 1;
      throw new Error(attempt.reply);
    },
    80,
    250,
  );
  return { client, refusals };
}

test('three nodes behind HAProxy (send-proxy-v2), Redis and PostgreSQL', async (t) => {
  const c = await startCluster(t);

  await t.test(
    'curl, poplib, fetchmail and mpop retrieve through the balancer; the nodes log their own addresses',
    async (t) => {
      const curl = await requireBinary(t, 'curl');
      const python = await requireBinary(t, 'python3');
      const fetchmail = await requireBinary(t, 'fetchmail');
      const mpop = await requireBinary(t, 'mpop');
      if (curl === undefined || python === undefined || fetchmail === undefined || mpop === undefined) return;
      const home = join(c.work, 'home');
      await mkdir(home, { recursive: true, mode: 0o700 });
      const env = clientEnv(home);
      const { host, port } = c.haproxy;

      const byCurl = await runClient(
        curl,
        [
          '-q',
          '--silent',
          '--show-error',
          '--max-time',
          '20',
          '--noproxy',
          '*',
          '--interface',
          '127.0.0.5',
          `pop3://curly:${PASSWORD}@${host}:${port}/2`,
        ],
        { env },
      );
      assert.equal(byCurl.code, 0, describeRun('curl', byCurl));
      assert.equal(byCurl.stdout.toString('latin1'), message('curly', 2));

      const script = [
        'import poplib, socket, sys',
        'class FromAddress(poplib.POP3):',
        '    def _create_socket(self, timeout):',
        "        return socket.create_connection((self.host, self.port), timeout, source_address=('127.0.0.6', 0))",
        `pop = FromAddress('${host}', ${port}, timeout=20)`,
        `pop.user('python'); pop.pass_('${PASSWORD}')`,
        'for n in range(1, len(pop.list()[1]) + 1):',
        "    sys.stdout.write('\\r\\n'.join(l.decode('latin1') for l in pop.retr(n)[1]) + '\\r\\n')",
        'pop.quit()',
      ].join('\n');
      const byPoplib = await runClient(python, ['-c', script], { env });
      assert.equal(byPoplib.code, 0, describeRun('poplib', byPoplib));
      assert.equal(
        byPoplib.stdout.toString('latin1'),
        Array.from({ length: MESSAGES }, (_, i) => message('python', i + 1)).join(''),
      );

      const out = join(c.work, 'fetched');
      await mkdir(out);
      const mda = join(c.work, 'mda.sh');
      await writeFile(mda, 'n=$(ls "$1" | wc -l); cat > "$1/$n"\n');
      const rc = join(c.work, 'fetchmailrc');
      await writeFile(
        rc,
        `poll ${host}\n  user "fetchy" there with password "${PASSWORD}"\n  sslproto ''\n  no rewrite\n`,
        {
          mode: 0o600,
        },
      );
      const byFetchmail = await runClient(
        fetchmail,
        [
          '-f',
          rc,
          '--nodetach',
          '--nosyslog',
          '--pidfile',
          join(c.work, 'fetchmail.pid'),
          '--idfile',
          join(c.work, 'fetchids'),
          '-p',
          'POP3',
          '--service',
          String(port),
          '--all',
          '--keep',
          '--mda',
          `/bin/sh ${mda} ${out}`,
          host,
        ],
        { env },
      );
      assert.equal(byFetchmail.code, 0, describeRun('fetchmail', byFetchmail));
      assert.equal((await readdir(out)).length, MESSAGES);

      const mpoprc = join(c.work, 'mpoprc');
      await writeFile(
        mpoprc,
        [
          `account default`,
          `host ${host}`,
          `port ${port}`,
          'tls off',
          // No TLS on loopback: mpop sends a password in clear only when told to.
          'auth user',
          'user mpopper',
          `password "${PASSWORD}"`,
          'source_ip 127.0.0.7',
          `uidls_file ${join(c.work, 'uidls')}`,
          'received_header off',
          'keep on',
          'timeout 20',
          `delivery maildir ${join(c.work, 'mpop-out')}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      for (const sub of ['new', 'cur', 'tmp'])
        await mkdir(join(c.work, 'mpop-out', sub), { recursive: true });
      const byMpop = await runClient(mpop, ['-C', mpoprc], { env });
      assert.equal(byMpop.code, 0, describeRun('mpop', byMpop));
      assert.equal((await readdir(join(c.work, 'mpop-out', 'new'))).length, MESSAGES);

      // Each node logged the client's own address (from the PROXY header), never HAProxy's.
      for (const [user, remote] of [
        ['curly', '127.0.0.5'],
        ['python', '127.0.0.6'],
        ['mpopper', '127.0.0.7'],
      ] as const) {
        const entry = await loginOf(c, user, remote);
        t.diagnostic(`${entry.node}: ${entry.raw}`);
      }
      const fetchy = await loginOf(c, 'fetchy');
      t.diagnostic(`${fetchy.node}: ${fetchy.raw}`);
      assert.ok(
        !allLogs(c).some((e) => e.msg === 'login' && e['remote'] === '127.0.0.2'),
        'a login from HAProxy itself',
      );
      // Round robin: the sessions were spread over the nodes.
      const served = new Set(
        allLogs(c)
          .filter((e) => e.msg === 'login')
          .map((e) => e.node),
      );
      assert.ok(served.size >= 2, `every login on one node: ${[...served].join(', ')}`);
      for (const line of c.haproxy.log.filter((l) => /pop3 nodes\/pop/.test(l)).slice(0, 4))
        t.diagnostic(`haproxy: ${line}`);
      // Nothing was deleted: every client kept the mail (curl and poplib do not delete; fetchmail and mpop keep).
      for (const user of ['curly', 'python', 'fetchy', 'mpopper'])
        assert.equal((await files(c, user)).length, MESSAGES);
    },
  );

  await t.test(
    "every node's monitor lists a session with the client's address and its node, and any node kicks it",
    async (t) => {
      const { client, reply } = await login(c, 'watched', '127.0.0.8');
      assert.match(reply, /^\+OK/);
      const holder = await loginOf(c, 'watched', '127.0.0.8');
      for (const [i, node] of c.nodes.entries()) {
        const listed = await runCtl(
          t,
          ['--host', '127.0.0.1', '--port', String(monitorPort(node.started)), 'sessions'],
          {
            env: { POPLAR_TOKEN: TOKEN },
          },
        );
        assert.equal(listed.code, 0, listed.stderr);
        assert.match(
          listed.stdout,
          new RegExp(`\\bwatched {2}127\\.0\\.0\\.8 {2}TRANSACTION {2}\\S+ {2}${holder.node}\\n`),
        );
        if (i === 0) t.diagnostic(`poplarctl sessions on pop1:\n${listed.stdout}`);
      }
      const other = c.nodes.find((_, i) => `pop${i + 1}` !== holder.node);
      assert.ok(other !== undefined);
      const kicked = await runCtl(
        t,
        ['--host', '127.0.0.1', '--port', String(monitorPort(other.started)), 'kick', 'watched'],
        {
          env: { POPLAR_TOKEN: TOKEN },
        },
      );
      assert.equal(kicked.stdout, 'ended 1 session of watched\n', kicked.stderr);
      assert.match(await client.readLine(), /^-ERR/);
      client.close();
    },
  );

  await t.test(
    'a node killed with SIGKILL while a DELE is pending loses nothing; its lease expires and another node takes it over',
    async (t) => {
      const { client, reply } = await login(c, 'killed');
      assert.match(reply, /^\+OK/);
      assert.match(await client.command('DELE 1'), /^\+OK/);
      const holder = await loginOf(c, 'killed');
      const index = Number(holder.node.slice(3)) - 1;
      const victim = c.nodes[index];
      assert.ok(victim !== undefined);
      t.diagnostic(`the session is on ${holder.node}; SIGKILL to it`);
      await victim.stop('SIGKILL');
      client.close();
      assert.equal((await files(c, 'killed')).length, MESSAGES, 'a message was deleted by a killed session');
      // Until the dead node's lease expires (--lock-ttl 5), the maildrop is in use: at once after
      // the kill certainly, as the lease was refreshed a moment ago. Then another node takes it.
      const since = c.nodes.map((n) => n.logs.length);
      const early = await login(c, 'killed');
      assert.match(early.reply, /^-ERR \[IN-USE\]/, "the dead node's lease did not hold");
      early.client.close();
      const taken = await loginWhenServed(c, 'killed', /^-ERR \[IN-USE\]/);
      t.diagnostic(`refused [IN-USE] ${taken.refusals + 1} times, then served`);
      assert.match(await taken.client.command('STAT'), new RegExp(`^\\+OK ${MESSAGES} `));
      await taken.client.command('QUIT');
      const lines = c.nodes.flatMap((n, i) => n.logs.slice(since[i]).map((e) => `pop${i + 1}: ${e.raw}`));
      for (const line of lines.filter((l) => /lease|lock|login/.test(l))) t.diagnostic(line);
      assert.equal((await files(c, 'killed')).length, MESSAGES);
    },
  );

  await t.test(
    'Redis restarted mid-run: new logins get [SYS/TEMP] while it is down, and work again once it is back',
    async () => {
      await c.redis.stop();
      const down = await login(c, 'redisy');
      assert.match(down.reply, /^-ERR \[SYS\/TEMP\]/);
      down.client.close();
      await c.redis.start();
      const back = await loginWhenServed(c, 'redisy', /^-ERR \[SYS\/TEMP\]/);
      assert.match(await back.client.command('QUIT'), /^\+OK/);
      assert.equal((await files(c, 'redisy')).length, MESSAGES);
    },
  );

  await t.test(
    'PostgreSQL stopped mid-run: a user seen recently still logs in, an unseen one gets [SYS/TEMP], never [AUTH]',
    async (t) => {
      // Seen on every node (round robin), so whichever node the next login reaches knows the user.
      for (let i = 0; i < c.nodes.length * 2; i++) {
        const seen = await login(c, 'cached');
        assert.match(seen.reply, /^\+OK/);
        await seen.client.command('QUIT');
      }
      const since = c.nodes.map((n) => n.logs.length);
      await c.postgres.stop();
      try {
        for (let i = 0; i < c.nodes.length; i++) {
          const cached = await login(c, 'cached');
          assert.match(cached.reply, /^\+OK/);
          if (i === 0) t.diagnostic(`PostgreSQL stopped; cached: ${cached.reply}`);
          assert.match(await cached.client.command('STAT'), /^\+OK 3 /);
          await cached.client.command('QUIT');
          const unseen = await login(c, 'unseen');
          assert.match(unseen.reply, /^-ERR \[SYS\/TEMP\]/);
          if (i === 0) t.diagnostic(`PostgreSQL stopped; unseen: ${unseen.reply}`);
          unseen.client.close();
        }
      } finally {
        await c.postgres.start();
      }
      const after = await loginWhenServed(c, 'unseen', /^-ERR \[SYS\/TEMP\]/);
      await after.client.command('QUIT');
      const lines = c.nodes.flatMap((n, i) => n.logs.slice(since[i]).map((e) => `pop${i + 1}: ${e.raw}`));
      for (const line of lines.filter((l) => /user database/.test(l))) t.diagnostic(line);
    },
  );
});
