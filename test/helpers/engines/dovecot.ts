// A private Dovecot POP3 server (Debian's dovecot-core and dovecot-pop3d) for the migration tests:
// its own configuration in a temp folder (no system configuration), a passwd-file, Maildirs under a
// mail root given by the test, a free loopback port, its log in a file.
import { writeFileSync } from 'node:fs';
import { chmod, readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import {
  engineDir,
  requireEngine,
  superviseEngine,
  type Cleanup,
  type EngineProcess,
} from './engine-process.js';

export const DOVECOT = '/usr/sbin/dovecot';
/** The account Dovecot's mail processes run as: Dovecot refuses root; the mail root must be its. */
export const DOVECOT_MAIL_ACCOUNT = 'nobody';

export interface DovecotEngine extends EngineProcess {
  /** Dovecot's log so far (`log_path`). */
  log(): Promise<string>;
}

/** `pop3_uidl_format` left at its default; passwords stored `{PLAIN}`. */
export async function startDovecot(
  t: Cleanup,
  options: { readonly mailRoot: string; readonly users: Readonly<Record<string, string>> },
): Promise<DovecotEngine> {
  await requireEngine(DOVECOT, 'Dovecot', 'dovecot-core dovecot-pop3d');
  await requireEngine('/usr/lib/dovecot/pop3', "Dovecot's POP3 server", 'dovecot-pop3d');
  const dir = await engineDir(t, 'poplar-dovecot-');
  // The login processes run as dovenull and must reach the sockets in base_dir.
  await chmod(dir, 0o755);
  const passwd = join(dir, 'passwd');
  writeFileSync(
    passwd,
    Object.entries(options.users)
      .map(([user, password]) => `${user}:{PLAIN}${password}\n`)
      .join(''),
  );
  const logPath = join(dir, 'dovecot.log');
  const conf = join(dir, 'dovecot.conf');
  const config = (port: number): string => `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${logPath}
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:${options.mailRoot}/%u
passdb {
  driver = passwd-file
  args = ${passwd}
}
userdb {
  driver = static
  args = uid=${DOVECOT_MAIL_ACCOUNT} gid=nogroup home=${options.mailRoot}/%u
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${port}
  }
}
service anvil {
  chroot =
}
`;
  const engine = await superviseEngine(t, {
    name: 'dovecot',
    command: (port) => {
      writeFileSync(conf, config(port));
      return [DOVECOT, ['-F', '-c', conf]];
    },
    ping: (port) => greets(port),
    stopSignal: 'SIGTERM',
  });
  return Object.assign(engine, {
    log: () => readFile(logPath, 'utf8').catch(() => ''),
  });
}

/** Resolves when a connection to `port` gets a `+OK` greeting. */
function greets(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy(new Error('no greeting')));
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      if (chunk.toString('latin1').startsWith('+OK')) resolve();
      else reject(new Error(`greeting: ${chunk.toString('latin1')}`));
    });
    socket.once('error', reject);
  });
}
