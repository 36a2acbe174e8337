// Files and folders the daemon creates or rewrites are private: users and admins files 0600,
// maildir folders 0700, the files it keeps in a maildir 0600. Checked in demo mode, after
// monitor changes, and after a new user's first login.
import assert from 'node:assert/strict';
import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { monitorRequest, startSecurityDaemon } from './fixture.js';

const modeOf = async (path: string): Promise<string> => ((await stat(path)).mode & 0o777).toString(8);

test('demo mode creates its users and admins files 0600 and the demo maildir 0700', async (t) => {
  const cwd = await tempDir(t);
  await startDaemon(t, { cwd, args: ['-m', 'mail', '-p', '0'] });
  const root = join(cwd, 'mail');
  assert.equal(await modeOf(join(root, '.poplar-users')), '600');
  assert.equal(await modeOf(join(root, '.poplar-admins')), '600');
  for (const dir of ['foo', 'foo/cur', 'foo/new', 'foo/tmp']) {
    assert.equal(await modeOf(join(root, dir)), '700', dir);
  }
  const [welcome] = await readdir(join(root, 'foo', 'new'));
  assert.ok(welcome !== undefined, 'the welcome message');
  assert.equal(await modeOf(join(root, 'foo', 'new', welcome)), '600');
});

test('demo mode creates the mail root itself 0700 (it lists every user name)', async (t) => {
  const cwd = await tempDir(t);
  await startDaemon(t, { cwd, args: ['-m', 'mail', '-p', '0'] });
  assert.equal(await modeOf(join(cwd, 'mail')), '700');
});

test('monitor changes rewrite the users and admins files 0600, even when they were readable before', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: 'alice:{PLAIN}alice-pw-5\n',
    prepare: async ({ root, cwd }) => {
      await buildMaildir(root, 'alice', [{ content: 'Subject: x\r\n\r\nno size in the name\r\n' }]);
      // An operator's files with lax modes.
      await chmod(join(cwd, 'users'), 0o644);
      await chmod(join(cwd, 'admins'), 0o644);
    },
  });
  assert.equal(await modeOf(s.usersFile), '644', 'as the operator left it');
  assert.equal((await monitorRequest(s.monitorPort, 'config', 0x04, 'newbie\0newbie-pw-6')).status, 'ok');
  assert.equal(await modeOf(s.usersFile), '600');
  assert.equal((await monitorRequest(s.monitorPort, 'config', 0x02, 'ops2\0Ops2-token-00001')).status, 'ok');
  assert.equal(await modeOf(s.adminsFile), '600');
  // Deleting rewrites the file too.
  await chmod(s.usersFile, 0o644);
  assert.equal((await monitorRequest(s.monitorPort, 'config', 0x05, 'newbie')).status, 'ok');
  assert.equal(await modeOf(s.usersFile), '600');
  // No temporary file left next to them.
  assert.deepEqual(
    (await readdir(s.cwd)).filter((n) => n.endsWith('.tmp')),
    [],
  );
});

test('a first login creates the maildir 0700; the size index and the lock are 0600', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: 'alice:{PLAIN}alice-pw-5\nnewbie:{PLAIN}newbie-pw-6\n',
    prepare: async ({ root }) => {
      await buildMaildir(root, 'alice', [{ content: 'Subject: x\r\n\r\nno size in the name\r\n' }]);
    },
  });
  const newbie = await Pop3TestClient.connect(s.pop3Port);
  const alice = await Pop3TestClient.connect(s.pop3Port);
  t.after(() => {
    newbie.close();
    alice.close();
  });
  await newbie.login('newbie', 'newbie-pw-6');
  for (const dir of ['newbie', 'newbie/cur', 'newbie/new', 'newbie/tmp']) {
    assert.equal(await modeOf(join(s.root, dir)), '700', dir);
  }
  await alice.login('alice', 'alice-pw-5');
  assert.equal(
    await modeOf(join(s.root, 'alice', '.poplar-lock')),
    '600',
    'the lock, while alice is logged in',
  );
  assert.equal(await modeOf(join(s.root, 'alice', '.poplar-sizes')), '600', 'the size index');
  assert.equal(await modeOf(join(s.root, 'newbie', '.poplar-lock')), '600');
});
