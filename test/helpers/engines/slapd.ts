// A private OpenLDAP slapd for tests: a slapd.conf in a temp folder (mdb backend, suffix
// dc=example,dc=org, the core/cosine/inetorgperson/nis schemas and Poplar's deploy/ldap/poplar.schema), entries loaded with slapadd, on a
// free loopback port; stop() and start() for the outage tests. Missing binaries fail the test with
// the command that installs them.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'ldapts';
import { engineDir, requireEngine, superviseEngine, type Cleanup } from './engine-process.js';
import { projectRoot } from '../../package/project.js';

const run = promisify(execFile);

export const SUFFIX = 'dc=example,dc=org';
export const PEOPLE = `ou=people,${SUFFIX}`;
/** The service account Poplar searches as (`[userdb] bindDn`), and its password. */
export const SERVICE_DN = `cn=poplar,ou=services,${SUFFIX}`;
export const SERVICE_PASSWORD = 'service-secret-Hk4';

export interface LdapUser {
  readonly uid: string;
  /** The userPassword value as stored: `{SSHA}...`, `{CRYPT}$6$...`, or a clear password. */
  readonly userPassword: string;
  /** Poplar's policy attributes (`poplarDelete: hide`...): the entry gets the class poplarUser. */
  readonly policy?: Readonly<Record<string, string>>;
}

export interface SlapdEngine {
  readonly port: number;
  /** `ldap://127.0.0.1:PORT`. */
  readonly url: string;
  /** Adds a person under ou=people, or `under` (online, as the root DN). */
  addUser(user: LdapUser, under?: string): Promise<void>;
  /** Adds an organizational unit `ou=NAME` under the suffix; resolves to its DN. */
  addOu(name: string): Promise<string>;
  /** `{SSHA}` of `password`, made by slappasswd (OpenLDAP's own form). */
  sshaOf(password: string): Promise<string>;
  /** Stops slapd: connections refused until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
}

const ROOT_DN = `cn=admin,${SUFFIX}`;
const ROOT_PASSWORD = 'root-secret-Pq2';

const personLdif = (user: LdapUser): string =>
  `dn: uid=${user.uid},${PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n` +
  `uid: ${user.uid}\ncn: ${user.uid}\nsn: ${user.uid}\nuidNumber: 1000\ngidNumber: 1000\n` +
  `homeDirectory: /home/${user.uid}\nuserPassword: ${user.userPassword}\n`;

/** Starts a private slapd holding `users` (and the service account), stopped and removed after `t`. */
export async function startSlapd(t: Cleanup, users: readonly LdapUser[] = []): Promise<SlapdEngine> {
  await requireEngine('/usr/sbin/slapd', 'slapd', 'slapd ldap-utils');
  await requireEngine('/usr/sbin/slapadd', 'slapadd', 'slapd ldap-utils');
  await requireEngine('/usr/sbin/slappasswd', 'slappasswd', 'slapd ldap-utils');
  const dir = await engineDir(t, 'poplar-slapd-');
  await mkdir(join(dir, 'db'));
  const conf = join(dir, 'slapd.conf');
  await writeFile(
    conf,
    [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `include ${join(projectRoot(), 'deploy', 'ldap', 'poplar.schema')}`,
      `pidfile ${join(dir, 'slapd.pid')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'database mdb',
      'maxsize 16777216',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw ${ROOT_PASSWORD}`,
      `directory ${join(dir, 'db')}`,
      // The service account reads password hashes; anyone may bind (auth) and read the rest.
      'access to attrs=userPassword',
      `  by dn.exact="${SERVICE_DN}" read`,
      '  by anonymous auth',
      '  by * none',
      'access to * by * read',
      '',
    ].join('\n'),
  );
  const base =
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n` +
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n` +
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n` +
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: poplar\n` +
    `userPassword: ${SERVICE_PASSWORD}\n\n` +
    users.map((u) => `${personLdif(u)}\n`).join('');
  const ldif = join(dir, 'base.ldif');
  await writeFile(ldif, base);
  await run('/usr/sbin/slapadd', ['-q', '-f', conf, '-l', ldif]);

  const url = (port: number): string => `ldap://127.0.0.1:${port}`;
  const asRoot = async (port: number, work: (client: Client) => Promise<void>): Promise<void> => {
    const client = new Client({ url: url(port), connectTimeout: 5000, timeout: 5000 });
    try {
      await client.bind(ROOT_DN, ROOT_PASSWORD);
      await work(client);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  };
  const engineProcess = await superviseEngine(t, {
    name: 'slapd',
    stopSignal: 'SIGTERM',
    command: (port) => ['/usr/sbin/slapd', ['-h', `${url(port)}/`, '-f', conf, '-d', '0']],
    ping: (port) => asRoot(port, () => Promise.resolve()),
  });
  const port = engineProcess.port;

  return {
    port,
    url: url(port),
    async addOu(name) {
      const dn = `ou=${name},${SUFFIX}`;
      await asRoot(port, (client) => client.add(dn, { objectClass: 'organizationalUnit', ou: name }));
      return dn;
    },
    async addUser(user, under = PEOPLE) {
      await asRoot(port, (client) =>
        client.add(`uid=${user.uid.replace(/[+,;"\\<>=]/g, (c) => `\\${c}`)},${under}`, {
          objectClass: [
            'inetOrgPerson',
            'posixAccount',
            ...(user.policy === undefined ? [] : ['poplarUser']),
          ],
          ...user.policy,
          uid: user.uid,
          cn: user.uid,
          sn: user.uid,
          uidNumber: '1000',
          gidNumber: '1000',
          homeDirectory: `/home/${user.uid}`,
          userPassword: user.userPassword,
        }),
      );
    },
    async sshaOf(password) {
      return (await run('/usr/sbin/slappasswd', ['-h', '{SSHA}', '-s', password])).stdout.trim();
    },
    stop: () => engineProcess.stop(),
    start: () => engineProcess.start(),
  };
}
