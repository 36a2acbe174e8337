// Nothing reveals which users exist (issue 12, security probe findings 2 and 5): for every login
// method, a name that does not exist gets the same replies after the same verification work as a
// real user with a wrong password, and SCRAM-SHA-256's made-up salt for it is the same at every try,
// from every server given the same decoy secret (the daemon's workers) and after a restart. Work is
// counted (hash calls), never timed.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { apopDigest } from '../../src/auth/digests.js';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { staticAuth } from '../../src/auth/static.js';
import { findScheme, hashPassword } from '../../src/auth/passwords/registry.js';
import type { PasswordScheme } from '../../src/auth/passwords/types.js';
import { countCrypto } from '../helpers/crypto-counter.js';
import { PASSWORD_LOGINS } from '../helpers/password-logins.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { scramClientFinal } from '../helpers/scram-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');
const INVALID = '-ERR [AUTH] invalid user name or password';
const SECRET = Buffer.alloc(32, 0x5a);

/** A server on a users file with these lines, the given decoy secret, and failures answered at once. */
async function serveFile(
  t: TestContext,
  lines: readonly string[],
  decoySecret: Buffer = SECRET,
): Promise<{ port: number; users: PasswdFileAuthenticator }> {
  const path = join(await tempDir(t), 'users');
  await writeFile(path, lines.map((line) => `${line}\n`).join(''));
  const users = new PasswdFileAuthenticator(path, { decoySecret });
  await users.reload();
  t.after(() => {
    users.close();
  });
  const { port } = await startServer(t, {
    authenticator: users,
    decoySecret,
    mailboxes: {},
    limits: { maxAuthFailures: 100 },
  });
  return { port, users };
}

async function connect(t: TestContext, port: number): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  return client;
}

/** Records each verify() of these schemes while `fn` runs: which scheme, and against which data. */
function spyOnVerify(t: TestContext, schemes: readonly PasswordScheme[]): { calls: string[] } {
  const calls: string[] = [];
  for (const scheme of schemes) {
    const verify = scheme.verify.bind(scheme);
    t.mock.method(scheme, 'verify', (password: string, data: string, ...rest: unknown[]) => {
      calls.push(`${scheme.name}:${data}`);
      return (verify as (...args: unknown[]) => Promise<boolean>)(password, data, ...rest);
    });
  }
  return { calls };
}

const scheme = (name: string): PasswordScheme => {
  const found = findScheme(name);
  assert.ok(found !== undefined);
  return found;
};

describe('password logins (USER/PASS, AUTH PLAIN, AUTH LOGIN): an unknown name costs one real verify', () => {
  for (const [method, login] of Object.entries(PASSWORD_LOGINS)) {
    test(method, async (t) => {
      // Two schemes of different cost: alice {SSHA256}, bob {SSHA512}, carol {PLAIN}.
      const fields = {
        alice: await hashPassword('pw-alice', 'SSHA256'),
        bob: await hashPassword('pw-bob', 'SSHA512'),
        carol: '{PLAIN}pw-carol',
      };
      const { port } = await serveFile(
        t,
        Object.entries(fields).map(([name, field]) => `${name}:${field}`),
      );
      const spy = spyOnVerify(t, [scheme('SSHA256'), scheme('SSHA512'), scheme('PLAIN')]);
      const client = await connect(t, port);
      const known = fields.alice.replace('{SSHA256}', 'SSHA256:');

      assert.equal(await login(client, 'alice', 'wrong'), INVALID);
      assert.deepEqual(spy.calls.splice(0), [known], 'a real user: one verify of their hash');

      const realHashes = Object.values(fields).map((field) => field.replace(/^\{([^}]+)\}/, '$1:'));
      const picked = new Set<string>();
      for (const name of ['nobody', 'zed', 'mallory', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'x9']) {
        assert.equal(await login(client, name, 'wrong'), INVALID, name);
        const calls = spy.calls.splice(0);
        assert.equal(calls.length, 1, `${name}: one verify, as for a real user: ${calls.join(' ')}`);
        const [call = ''] = calls;
        assert.ok(realHashes.includes(call), `${name}: checked against a real user's hash, got ${call}`);
        picked.add(call);
        // The same name is checked against the same hash every time.
        assert.equal(await login(client, name, 'other'), INVALID);
        assert.deepEqual(spy.calls.splice(0), [call], `${name} again`);
      }
      // Unknown names cost what users of every scheme cost, not what the most common scheme costs.
      assert.ok(picked.size >= 2, `unknown names all checked against one scheme: ${[...picked].join(' ')}`);
    });
  }

  test('the decoy a name gets depends only on the secret and the users, not on the process', async (t) => {
    const lines = ['a:{PLAIN}1', 'b:{PLAIN}2', 'c:{PLAIN}3', 'd:{PLAIN}4', 'e:{PLAIN}5'];
    const picks = async (secret: Buffer): Promise<string[]> => {
      const { port } = await serveFile(t, lines, secret);
      const spy = spyOnVerify(t, [scheme('PLAIN')]);
      const client = await connect(t, port);
      for (const name of ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8']) {
        assert.equal(await client.command(`USER ${name}`), '+OK send PASS');
        assert.equal(await client.command('PASS x'), INVALID);
      }
      t.mock.restoreAll();
      return spy.calls;
    };
    const first = await picks(SECRET);
    assert.deepEqual(
      await picks(Buffer.from(SECRET)),
      first,
      'another server (a worker, a restart), same secret',
    );
    assert.notDeepEqual(await picks(Buffer.alloc(32, 1)), first, 'another secret');
  });
});

describe('challenge-response logins: an unknown name costs the same hashing as a wrong digest', () => {
  const USERS = ['alice:{PLAIN}pw-alice', 'bob:{PLAIN}pw-bob'];

  test('APOP', async (t) => {
    const { port } = await serveFile(t, USERS);
    const counter = countCrypto(t);
    const client = await connect(t, port);
    const stamp = /<[^>]+>/.exec(client.greeting)?.[0] ?? assert.fail(client.greeting);
    const known = await counter.during(() => client.command(`APOP alice ${apopDigest(stamp, 'wrong')}`));
    const unknown = await counter.during(() => client.command(`APOP nobody ${apopDigest(stamp, 'wrong')}`));
    assert.equal(known.result, INVALID);
    assert.equal(unknown.result, INVALID);
    assert.ok(known.calls.includes('createHash:md5'), known.calls.join(' '));
    assert.deepEqual(unknown.calls, known.calls);
  });

  test('CRAM-MD5', async (t) => {
    const { port } = await serveFile(t, USERS);
    const counter = countCrypto(t);
    const client = await connect(t, port);
    const attempt = async (user: string): Promise<{ result: string; calls: readonly string[] }> => {
      const line = await client.command('AUTH CRAM-MD5');
      const challenge = unb64(line.slice(2));
      const response = b64(`${user} ${createHmac('md5', 'wrong').update(challenge).digest('hex')}`);
      return counter.during(() => client.command(response));
    };
    const known = await attempt('alice');
    const unknown = await attempt('nobody');
    assert.equal(known.result, INVALID);
    assert.equal(unknown.result, INVALID);
    assert.ok(known.calls.includes('createHmac:md5'), known.calls.join(' '));
    assert.deepEqual(unknown.calls, known.calls);
  });
});

describe('SCRAM-SHA-256', () => {
  const bare = (user: string): string => `n=${user},r=abcdefghijklmnop`;

  /** client-first for `user`; the server-first fields and what the server did for it. */
  async function first(
    client: Pop3TestClient,
    user: string,
    counter?: ReturnType<typeof countCrypto>,
  ): Promise<{ serverFirst: string; salt: string; iterations: string; calls: readonly string[] }> {
    const send = () => client.command(`AUTH SCRAM-SHA-256 ${b64(`n,,${bare(user)}`)}`);
    const { result: line, calls } =
      counter === undefined ? { result: await send(), calls: [] } : await counter.during(send);
    assert.match(line, /^\+ /);
    const serverFirst = unb64(line.slice(2));
    const fields = new Map(serverFirst.split(',').map((f) => [f.slice(0, 1), f.slice(2)]));
    return { serverFirst, salt: fields.get('s') ?? '', iterations: fields.get('i') ?? '', calls };
  }

  async function users(): Promise<string[]> {
    return [
      `alice:${await hashPassword('pw-alice', 'SCRAM-SHA-256')}`,
      `bob:${await hashPassword('pw-bob', 'SCRAM-SHA-256')}`,
    ];
  }

  test('an unknown name: the same work as a real user with a wrong password, at every step', async (t) => {
    const { port } = await serveFile(t, await users());
    const counter = countCrypto(t);
    const client = await connect(t, port);
    const attempt = async (user: string): Promise<{ calls: readonly string[]; result: string }> => {
      const start = await first(client, user, counter);
      const { message } = scramClientFinal({
        password: 'wrong',
        gs2Header: 'n,,',
        clientFirstBare: bare(user),
        serverFirst: start.serverFirst,
      });
      const final = await counter.during(() => client.command(b64(message)));
      return { calls: [...start.calls, ...final.calls], result: final.result };
    };
    // The first exchange after the users file is read sets up the decoys (whoever it is for).
    await attempt('bob');
    const known = await attempt('alice');
    const unknown = await attempt('nobody');
    assert.equal(known.result, INVALID);
    assert.equal(unknown.result, INVALID);
    assert.ok(known.calls.includes('createHmac:sha256'), known.calls.join(' '));
    assert.deepEqual(unknown.calls, known.calls);
  });

  test("an unknown name's salt and iterations: the same at every try and from every server with the same secret", async (t) => {
    const lines = await users();
    const a = await serveFile(t, lines);
    const b = await serveFile(t, lines, Buffer.from(SECRET));
    const c = await serveFile(t, lines, Buffer.alloc(32, 9));
    const saltOf = async (port: number, user: string): Promise<string> => {
      const client = await Pop3TestClient.connect(port);
      try {
        const { salt, iterations } = await first(client, user);
        assert.equal(iterations, '4096');
        return salt;
      } finally {
        client.close();
      }
    };
    for (const user of ['nobody', 'zed']) {
      const salt = await saltOf(a.port, user);
      assert.equal(await saltOf(a.port, user), salt, `${user}: again`);
      assert.equal(await saltOf(b.port, user), salt, `${user}: another worker, or after a restart`);
      assert.notEqual(await saltOf(c.port, user), salt, `${user}: another secret`);
    }
    // A real user's salt is the one in the file, whatever the secret.
    assert.equal(await saltOf(c.port, 'alice'), await saltOf(a.port, 'alice'));
  });

  test('an unknown name gets the iteration count of the user it is checked against, not always 4096', async (t) => {
    // Rewrite the iteration count of every stored hash: a file whose users all have 8192.
    const lines = (await users()).map((line) => line.replace('}4096,', '}8192,'));
    const { port } = await serveFile(t, lines);
    const client = await connect(t, port);
    assert.equal((await first(client, 'nobody')).iterations, '8192');
  });
});

describe('StaticAuthenticator: an unknown name costs the same hashing as a wrong password, for every method', () => {
  const USERS = { alice: 'pw-alice', bob: 'pw-bob' };

  /** A fresh server (nothing cached yet) on a StaticAuthenticator, and a client on it. */
  async function fresh(t: TestContext): Promise<Pop3TestClient> {
    const { port } = await startServer(t, {
      authenticator: staticAuth(USERS, { decoySecret: SECRET }),
      decoySecret: SECRET,
      mailboxes: {},
      limits: { maxAuthFailures: 100 },
    });
    return connect(t, port);
  }

  const METHODS: Record<string, (client: Pop3TestClient, user: string) => Promise<string>> = {
    'USER/PASS': async (client, user) => {
      assert.equal(await client.command(`USER ${user}`), '+OK send PASS');
      return client.command('PASS wrong');
    },
    APOP: (client, user) => {
      const stamp = /<[^>]+>/.exec(client.greeting)?.[0] ?? assert.fail(client.greeting);
      return client.command(`APOP ${user} ${apopDigest(stamp, 'wrong')}`);
    },
    'CRAM-MD5': async (client, user) => {
      const challenge = unb64((await client.command('AUTH CRAM-MD5')).slice(2));
      return client.command(b64(`${user} ${createHmac('md5', 'wrong').update(challenge).digest('hex')}`));
    },
    // The first exchange of a server: SCRAM keys are made from the passwords when first needed.
    'SCRAM-SHA-256 (server-first)': async (client, user) => {
      const line = await client.command(`AUTH SCRAM-SHA-256 ${b64(`n,,n=${user},r=abcdefghijklmnop`)}`);
      return line.slice(0, 2);
    },
  };

  for (const [method, attempt] of Object.entries(METHODS)) {
    test(method, async (t) => {
      const counter = countCrypto(t);
      const [one, other] = [await fresh(t), await fresh(t)];
      const known = await counter.during(() => attempt(one, 'alice'));
      const unknown = await counter.during(() => attempt(other, 'nobody'));
      assert.equal(unknown.result, known.result);
      assert.ok(known.calls.length > 0, 'some hashing was counted');
      assert.deepEqual(unknown.calls, known.calls);
    });
  }
});
