// Every start-up error names what failed (its role) and where (the full path, or the address and
// port), in one line on stderr, and the daemon exits 1.
import assert from 'node:assert/strict';
import { mkdir, realpath, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runPoplar } from '../helpers/daemon.js';
import { tempDir } from '../helpers/temp-dir.js';

async function scratch(t: TestContext): Promise<string> {
  const cwd = await realpath(await tempDir(t));
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}alice-pw\n');
  await mkdir(join(cwd, 'a-directory'));
  await writeFile(join(cwd, 'a-file'), 'not a directory\n');
  return cwd;
}

/** A port on 127.0.0.1 that something else holds for the rest of the test. */
async function portInUse(t: TestContext): Promise<number> {
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => holder.close(resolve)));
  return (holder.address() as AddressInfo).port;
}

async function refusal(t: TestContext, cwd: string, args: readonly string[]): Promise<string> {
  const run = await runPoplar(t, ['-p', '0', '--listen', '127.0.0.1', '--log-level', 'silent', ...args], {
    cwd,
  });
  assert.equal(run.code, 1, run.stderr);
  assert.ok(!run.stdout.includes('poplar started'));
  return run.stderr;
}

const LOCAL = ['--no-monitor', '--workers', '1'];

test('users file: a directory, or missing, with one process and with workers', async (t) => {
  const cwd = await scratch(t);
  for (const workers of ['1', '2']) {
    const args = ['--no-monitor', '--workers', workers, '--users'];
    assert.equal(
      await refusal(t, cwd, [...args, 'a-directory']),
      `poplar: users file ${cwd}/a-directory is a directory, not a file\n`,
    );
    assert.equal(
      await refusal(t, cwd, [...args, 'missing']),
      `poplar: users file ${cwd}/missing does not exist\n`,
    );
  }
});

test('demo mode: the demo users file is a directory; the mail root is a file', async (t) => {
  const cwd = await scratch(t);
  await mkdir(join(cwd, 'mail', '.poplar-users'), { recursive: true });
  assert.equal(
    await refusal(t, cwd, [...LOCAL, '-m', 'mail']),
    `poplar: users file ${cwd}/mail/.poplar-users is a directory, not a file\n`,
  );
  assert.equal(
    await refusal(t, cwd, [...LOCAL, '-m', 'a-file']),
    `poplar: mail root ${cwd}/a-file is not a directory\n`,
  );
});

test('admins file: missing, or a directory', async (t) => {
  const cwd = await scratch(t);
  const args = ['--workers', '1', '--users', 'users', '--monitor-port', '0', '--monitor-listen', '127.0.0.1'];
  assert.equal(
    await refusal(t, cwd, [...args, '--admins', 'missing']),
    `poplar: admins file ${cwd}/missing does not exist\n`,
  );
  assert.equal(
    await refusal(t, cwd, [...args, '--admins', 'a-directory']),
    `poplar: admins file ${cwd}/a-directory is a directory, not a file\n`,
  );
});

test('TLS certificate and key: each named when missing', async (t) => {
  const cwd = await scratch(t);
  const args = [...LOCAL, '--users', 'users'];
  assert.equal(
    await refusal(t, cwd, [...args, '--tls-cert', 'no-cert.pem', '--tls-key', 'users']),
    `poplar: TLS certificate ${cwd}/no-cert.pem does not exist\n`,
  );
  assert.equal(
    await refusal(t, cwd, [...args, '--tls-cert', 'users', '--tls-key', 'no-key.pem']),
    `poplar: TLS key ${cwd}/no-key.pem does not exist\n`,
  );
});

test('a port in use names its listener: POP3, the monitor, metrics', async (t) => {
  const cwd = await scratch(t);
  const port = await portInUse(t);
  const args = ['--workers', '1', '--users', 'users'];
  const inUse = (role: string): RegExp =>
    new RegExp(`^poplar: cannot listen for ${role} on 127\\.0\\.0\\.1 port ${port}: .*EADDRINUSE.*\\n$`);
  assert.match(await refusal(t, cwd, [...args, '--no-monitor', '-p', String(port)]), inUse('POP3'));
  assert.match(
    await refusal(t, cwd, [...args, '--monitor-port', String(port), '--monitor-listen', '127.0.0.1']),
    inUse('the monitor'),
  );
  assert.match(
    await refusal(t, cwd, [...args, '--no-monitor', '--metrics-listen', `127.0.0.1:${port}`]),
    inUse('metrics'),
  );
});
