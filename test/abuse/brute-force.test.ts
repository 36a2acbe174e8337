// The login throttle end to end: password guessing from one address gets ever longer waits,
// across connections; the owner of the name still logs in from elsewhere; the monitor and
// /metrics count it all. Delays are tiny (options), and the tests look at the delays the server
// logged, not at clocks, except for one "at least this long" check.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import type { LogEntry } from '../monitor/setup.js';
import { PASSWORDS, startMonitorFixture } from '../monitor/setup.js';
import { connectFrom, tryLoginFrom } from './clients.js';

const LIMITS = {
  authFailureDelayMs: 20,
  authThrottleMaxDelayMs: 160,
  authThrottleMaxUserDelayMs: 40,
  maxAuthFailures: 3,
};
const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';
const ATTACKER = '127.0.0.2';
const HOME = '127.0.0.3';

/** The throttle's fields of a login log line: [address failures, user failures, delay]. */
const figures = (e: LogEntry): unknown[] => [
  e.fields['failures'],
  e.fields['userFailures'],
  e.fields['delayMs'],
];

/** The value of one sample line of the Prometheus text, `name{labels} value`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `${series} is missing`);
  return Number(line.slice(series.length + 1));
}

test('guessing from one address: delays double across connections up to the cap; the owner still logs in', async (t) => {
  const f = await startMonitorFixture(t, { metrics: true, pop3Limits: LIMITS });
  const guesses: string[] = [];
  let lastReplyMs = 0;
  // Three connections of three guesses each: maxAuthFailures closes each one, the count goes on.
  for (let c = 0; c < 3; c++) {
    const client = await connectFrom(f.pop3Port, ATTACKER);
    t.after(() => {
      client.close();
    });
    for (let g = 0; g < 3; g++) {
      const guess = `guess-${c}-${g}-x7q`;
      guesses.push(guess);
      assert.equal(await client.command('USER alice'), '+OK send PASS');
      const sentAt = performance.now();
      const reply = await client.command(`PASS ${guess}`);
      lastReplyMs = performance.now() - sentAt;
      assert.equal(reply, g === 2 ? `${BAD_LOGIN}, too many failures` : BAD_LOGIN);
    }
    assert.equal(await client.closed(), '');
  }
  const attacks = f.log.find('login failed').filter((e) => e.fields['remote'] === ATTACKER);
  assert.deepEqual(attacks.map(figures), [
    [1, 1, 20],
    [2, 2, 40],
    [3, 3, 80],
    [4, 4, 160],
    [5, 5, 160],
    [6, 6, 160],
    [7, 7, 160],
    [8, 8, 160],
    [9, 9, 160],
  ]);
  for (const e of attacks) {
    assert.equal(e.fields['user'], 'alice');
    assert.equal(e.fields['method'], 'USER');
  }
  // The server really waited: the last answer came no sooner than its logged delay (timers may
  // fire a millisecond early against this clock).
  assert.ok(lastReplyMs >= 150, `answered after ${lastReplyMs} ms`);

  // alice, from her own address, gets in: held back only by the small per-user cap.
  assert.equal(
    await tryLoginFrom(f.pop3Port, HOME, 'alice', PASSWORDS.alice),
    '+OK alice has 2 messages (47 octets)',
  );
  const delayed = f.log.find('throttled login attempt');
  assert.equal(delayed.length, 1);
  const [atHome] = delayed;
  assert.ok(atHome !== undefined);
  assert.equal(atHome.fields['remote'], HOME);
  assert.equal(atHome.fields['user'], 'alice');
  assert.deepEqual(figures(atHome), [0, 9, 40]);

  // bob, from the same clean address, is not slowed at all.
  assert.equal(
    await tryLoginFrom(f.pop3Port, HOME, 'bob', PASSWORDS.bob),
    '+OK bob has 1 message (25 octets)',
  );
  assert.equal(f.log.find('throttled login attempt').length, 1);

  // The right password from the guessing address is answered after that address's penalty (alice's
  // own count went with her login from home) ...
  assert.equal(
    await tryLoginFrom(f.pop3Port, ATTACKER, 'alice', PASSWORDS.alice),
    '+OK alice has 2 messages (47 octets)',
  );
  const fromAttacker = f.log.find('throttled login attempt')[1];
  assert.ok(fromAttacker !== undefined);
  assert.equal(fromAttacker.fields['remote'], ATTACKER);
  assert.deepEqual(figures(fromAttacker), [9, 0, 160]);
  // ... and the success leaves the address's count as it was: an account holder cannot wipe the
  // record of the guesses made from there. It fades with time only.
  assert.equal(await tryLoginFrom(f.pop3Port, ATTACKER, 'bob', 'wrong-bob-pw'), BAD_LOGIN);
  const afterSuccess = f.log.find('login failed').at(-1);
  assert.ok(afterSuccess !== undefined);
  assert.deepEqual(figures(afterSuccess), [10, 1, 160]);

  // Counters: 10 failures, 3 successes; 11 answers held back by the throttle (failures 2 to 10 and
  // the two delayed successes; only the first failure got the plain delay).
  const { stats } = f.pop3;
  assert.equal(stats.loginsFailed, 10);
  assert.equal(stats.loginsSucceeded, 3);
  assert.equal(stats.loginsThrottled, 11);
  assert.equal(await f.get('loginsFailed'), 10n);
  assert.equal(await f.get('loginsSucceeded'), 3n);
  const response = await fetch(`http://127.0.0.1:${String(f.metricsPort)}/metrics`);
  const text = await response.text();
  assert.equal(sample(text, 'pop3_logins_total{method="USER",result="failed"}'), 10);
  assert.equal(sample(text, 'pop3_logins_total{method="USER",result="ok"}'), 3);
  assert.equal(sample(text, 'pop3_logins_throttled_total'), 11);
  for (const word of [ATTACKER, HOME, 'alice']) assert.ok(!text.includes(word), `${word} in the metrics`);

  // Passwords never reach the log, right or wrong.
  const logged = JSON.stringify(f.log.entries);
  for (const secret of [...guesses, PASSWORDS.alice, PASSWORDS.bob, 'wrong-bob-pw']) {
    assert.ok(!logged.includes(secret), `${secret} was logged`);
  }
});

test('failed SASL exchanges without a user name count against the address', async (t) => {
  const f = await startMonitorFixture(t, { pop3Limits: { ...LIMITS, maxAuthFailures: 10 } });
  const client = await connectFrom(f.pop3Port, '127.0.0.4');
  t.after(() => {
    client.close();
  });
  for (let i = 0; i < 3; i++) {
    assert.equal(
      await client.command('AUTH PLAIN !!!!'),
      '-ERR [AUTH] authentication failed: invalid base64',
    );
  }
  const failures = f.log.find('login failed').filter((e) => e.fields['remote'] === '127.0.0.4');
  assert.deepEqual(failures.map(figures), [
    [1, 0, 20],
    [2, 0, 40],
    [3, 0, 80],
  ]);
  // The same connection's right password then waits the address's penalty, and gets in.
  assert.equal(await client.login('bob', PASSWORDS.bob), '+OK bob has 1 message (25 octets)');
  assert.deepEqual(figures(f.log.find('throttled login attempt')[0] as LogEntry), [3, 0, 80]);
  assert.equal(f.pop3.stats.loginsThrottled, 3);
});

test('a client that resets the connection while held back ends its session at once', async (t) => {
  // Penalties far longer than the test: each session must end with the reset, not after the wait.
  // (A plain FIN would not do: the client may have half-closed and still want its answers.)
  const f = await startMonitorFixture(t, {
    pop3Limits: { authFailureDelayMs: 600_000, authThrottleMaxDelayMs: 600_000, maxAuthFailures: 10 },
  });
  for (const [password, message] of [
    ['wrong', 'login failed'],
    [PASSWORDS.alice, 'throttled login attempt'],
  ] as const) {
    const client = await connectFrom(f.pop3Port, '127.0.0.5');
    t.after(() => {
      client.close();
    });
    assert.equal(await client.command('USER alice'), '+OK send PASS');
    client.send(`PASS ${password}`);
    const held = await f.log.waitFor(message);
    assert.equal(held.fields['delayMs'], 600_000);
    const closed = new Promise<unknown>((resolve) => f.pop3.once('close', resolve));
    client.socket.resetAndDestroy();
    await closed;
    assert.equal(f.pop3.connectionCount, 0);
  }
  assert.equal(f.pop3.stats.loginsFailed, 1);
  assert.equal(f.pop3.stats.loginsSucceeded, 0);
  assert.equal(f.pop3.stats.loginsThrottled, 1);
});
