import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  closeDefaultHashPool,
  configureHashPool,
  DEFAULT_HASH_QUEUE_JOBS,
  defaultHashPool,
  HashPool,
  HashPoolError,
  HashPoolErrorCode,
  type HashPoolOptions,
} from '../../../../src/auth/passwords/hash-pool.js';
import { crypt } from '../../../../src/auth/passwords/hash-worker.js';
import type { StoredPassword } from '../../../../src/auth/passwords/types.js';
import { parseStoredPassword } from '../../../../src/auth/passwords/registry.js';

/**
 * A worker for testing the pool itself, as a data: URL (it needs nothing but node:worker_threads):
 * `echo` answers, `spin` computes for `ms` (forever without), `fail` reports an error, `crash`
 * throws outside the handler (the worker dies), `exit` ends the thread with code 3, `hold` never
 * answers (without using the CPU), `handled` answers how many jobs this worker was given.
 */
const FIXTURE_WORKER = new URL(
  `data:text/javascript,${encodeURIComponent(`
    import { parentPort } from 'node:worker_threads';
    let handled = 0;
    parentPort.on('message', ({ id, job }) => {
      handled += 1;
      switch (job.op) {
        case 'hold':
          break;
        case 'handled':
          parentPort.postMessage({ id, isOk: true, value: handled });
          break;
        case 'echo':
          parentPort.postMessage({ id, isOk: true, value: job.value });
          break;
        case 'spin': {
          const end = Date.now() + (job.ms ?? Infinity);
          while (Date.now() < end);
          parentPort.postMessage({ id, isOk: true, value: job.value });
          break;
        }
        case 'fail':
          parentPort.postMessage({ id, isOk: false, message: 'no good' });
          break;
        case 'crash':
          setImmediate(() => { throw new Error('boom'); });
          break;
        case 'exit':
          process.exit(3);
      }
    });
  `)}`,
);

function fixturePool(t: TestContext, options: HashPoolOptions = {}): HashPool {
  const pool = new HashPool({ workerUrl: FIXTURE_WORKER, ...options });
  t.after(() => pool.close());
  return pool;
}

const echo = (value: unknown) => ({ op: 'echo', value });
const spin = (ms?: number, value?: unknown) => ({ op: 'spin', ms, value });
const hold = { op: 'hold' };

function isPoolError(code: HashPoolErrorCode) {
  return (error: unknown) => error instanceof HashPoolError && error.code === code;
}

describe('HashPool', () => {
  test('starts no worker until the first job', (t) => {
    const pool = fixturePool(t);
    assert.deepEqual(pool.stats(), { workers: 0, busy: 0, queued: 0, started: 0 });
  });

  test('runs jobs and answers each with its own result', async (t) => {
    const pool = fixturePool(t, { size: 2 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => pool.run(echo(n))));
    assert.deepEqual(results, [1, 2, 3, 4, 5]);
    assert.ok(pool.stats().started <= 2);
  });

  test('at most `size` workers; the rest wait', async (t) => {
    const pool = fixturePool(t, { size: 2 });
    const jobs = [1, 2, 3, 4].map((n) => pool.run(spin(50, n)));
    assert.deepEqual(pool.stats(), { workers: 2, busy: 2, queued: 2, started: 2 });
    assert.deepEqual(await Promise.all(jobs), [1, 2, 3, 4]);
    assert.deepEqual(pool.stats(), { workers: 2, busy: 0, queued: 0, started: 2 });
  });

  test('jobs start in the order they came', async (t) => {
    const pool = fixturePool(t, { size: 1 });
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        pool.run(spin(10, n)).then((value) => {
          order.push(value as number);
        }),
      ),
    );
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
  });

  test('a job that reports an error fails; its worker carries on', async (t) => {
    const pool = fixturePool(t, { size: 1 });
    await assert.rejects(pool.run({ op: 'fail' }), isPoolError(HashPoolErrorCode.JOB_FAILED));
    assert.equal(await pool.run(echo('after')), 'after');
    assert.equal(pool.stats().started, 1);
  });

  test('a worker that dies fails its job and is replaced', async (t) => {
    const pool = fixturePool(t, { size: 1 });
    assert.equal(await pool.run(echo('before')), 'before');
    await assert.rejects(pool.run({ op: 'crash' }), (error) => {
      assert.ok(isPoolError(HashPoolErrorCode.WORKER_EXITED)(error));
      assert.match((error as Error).message, /exited with code 1/);
      assert.match(String((error as Error).cause), /boom/);
      return true;
    });
    const exiting = pool.run({ op: 'exit' });
    const queuedBehindExit = pool.run(echo('queued'));
    await assert.rejects(exiting, /exited with code 3/);
    assert.equal(await queuedBehindExit, 'queued');
    assert.equal(await pool.run(echo('after')), 'after');
    assert.equal(pool.stats().started, 3, 'one worker, then two replacements');
  });

  // Timeouts count from when a job is handed to a worker, a new worker's start-up included:
  // the margins below leave that start-up most of a second on a loaded machine.
  test('a job past its timeout fails and its worker is replaced', async (t) => {
    const pool = fixturePool(t, { size: 1, jobTimeoutMs: 1_000 });
    const stuck = pool.run(spin());
    const waiting = pool.run(echo('waiting'));
    await assert.rejects(stuck, isPoolError(HashPoolErrorCode.TIMEOUT));
    assert.equal(await waiting, 'waiting', 'the next job runs on a new worker');
    assert.deepEqual(pool.stats(), { workers: 1, busy: 0, queued: 0, started: 2 });
  });

  test('the timeout counts from when a worker takes the job, not from the queue', async (t) => {
    const pool = fixturePool(t, { size: 1, jobTimeoutMs: 1_200 });
    // Each job runs 500 ms; the last waits 1500 ms before it starts and still succeeds.
    const results = await Promise.all([1, 2, 3, 4].map((n) => pool.run(spin(500, n))));
    assert.deepEqual(results, [1, 2, 3, 4]);
    assert.equal(pool.stats().started, 1);
  });

  test('close() fails waiting and running jobs; the pool can be used again', async (t) => {
    const pool = fixturePool(t, { size: 1 });
    const running = assert.rejects(pool.run(spin()), isPoolError(HashPoolErrorCode.CLOSED));
    const waiting = assert.rejects(pool.run(echo('never')), isPoolError(HashPoolErrorCode.CLOSED));
    await pool.close();
    await Promise.all([running, waiting]);
    assert.deepEqual(pool.stats(), { workers: 0, busy: 0, queued: 0, started: 1 });
    assert.equal(await pool.run(echo('again')), 'again');
    await pool.close();
    await pool.close(); // twice is harmless
  });

  test('a worker module that does not load fails each job; the pool goes on trying', async (t) => {
    const pool = fixturePool(t, { size: 1, workerUrl: new URL('file:///nonexistent/poplar-hash-worker.js') });
    const first = pool.run(echo(1));
    const second = pool.run(echo(2));
    await assert.rejects(first, (error) => {
      assert.ok(isPoolError(HashPoolErrorCode.WORKER_EXITED)(error));
      assert.match(String((error as Error).cause), /Cannot find module/);
      return true;
    });
    await assert.rejects(second, isPoolError(HashPoolErrorCode.WORKER_EXITED));
    assert.deepEqual(pool.stats(), { workers: 0, busy: 0, queued: 0, started: 2 });
  });

  test('a worker that cannot be made at all fails every waiting job', async (t) => {
    // Worker() refuses an http: URL at once (and fetches nothing).
    const pool = fixturePool(t, { workerUrl: new URL('http://example.invalid/worker.js') });
    await assert.rejects(pool.run(echo(1)), (error) => {
      assert.ok(isPoolError(HashPoolErrorCode.WORKER_EXITED)(error));
      assert.match((error as Error).message, /cannot start a hash worker/);
      return true;
    });
    assert.deepEqual(pool.stats(), { workers: 0, busy: 0, queued: 0, started: 0 });
  });

  test('at most `maxQueuedJobs` wait: one more is refused at once with QUEUE_FULL', async (t) => {
    const pool = fixturePool(t, { size: 1, maxQueuedJobs: 2 });
    const settled = [pool.run(hold), pool.run(echo(1)), pool.run(echo(2))].map((job) =>
      assert.rejects(job, isPoolError(HashPoolErrorCode.CLOSED)),
    );
    await assert.rejects(pool.run(echo(3)), isPoolError(HashPoolErrorCode.QUEUE_FULL));
    assert.deepEqual(pool.stats(), { workers: 1, busy: 1, queued: 2, started: 1 });
    await pool.close();
    await Promise.all(settled);
    assert.equal(new HashPool().maxQueuedJobs, DEFAULT_HASH_QUEUE_JOBS);
  });

  test('a free worker takes a job even when maxQueuedJobs is 0', async (t) => {
    const pool = fixturePool(t, { size: 1, maxQueuedJobs: 0 });
    assert.equal(await pool.run(echo('now')), 'now');
  });

  test('a waiting job whose signal aborts leaves the queue and never reaches a worker', async (t) => {
    const pool = fixturePool(t, { size: 1 });
    const busy = pool.run(spin(100, 'first'));
    const gone = new AbortController();
    const cancelled = pool.run(echo('never'), { signal: gone.signal });
    const after = pool.run(echo('after'));
    assert.equal(pool.stats().queued, 2);
    gone.abort();
    await assert.rejects(cancelled, isPoolError(HashPoolErrorCode.CANCELLED));
    assert.equal(pool.stats().queued, 1);
    assert.equal(await busy, 'first');
    assert.equal(await after, 'after');
    // spin, echo('after') and this one: the cancelled job was never posted.
    assert.equal(await pool.run({ op: 'handled' }), 3);
    await assert.rejects(
      pool.run(echo('late'), { signal: gone.signal }),
      isPoolError(HashPoolErrorCode.CANCELLED),
    );
  });

  test('options are checked', () => {
    assert.throws(() => new HashPool({ size: 0 }), RangeError);
    assert.throws(() => new HashPool({ size: 1.5 }), RangeError);
    assert.throws(() => new HashPool({ jobTimeoutMs: 0 }), RangeError);
    assert.throws(() => new HashPool({ jobTimeoutMs: Number.NaN }), RangeError);
    assert.throws(() => new HashPool({ maxQueuedJobs: -1 }), RangeError);
  });
});

describe('the hash worker', () => {
  test('computes crypt() on a worker thread, as on this one', async (t) => {
    const pool = new HashPool({ size: 1 });
    t.after(() => pool.close());
    // doveadm pw -s SHA256-CRYPT -p 'secret'
    const sha256 = '$5$Bgcfy5i/S9rzsyJl$we7RyVN0ro4HXzt8P5g3Lar3AuZKxHtqbGCvspTA7BB';
    assert.equal(await pool.run({ op: 'crypt', password: 'secret', setting: '$5$Bgcfy5i/S9rzsyJl' }), sha256);
    assert.equal(crypt('secret', '$5$Bgcfy5i/S9rzsyJl'), sha256);
    // doveadm pw -s BLF-CRYPT -p 'secret'
    const bcrypt = '$2y$05$p2DoC3uusqclDick1EVUOOsHbquUb6m4m7oOGhbzriXiMjQ0jHcka';
    assert.equal(await pool.run({ op: 'crypt', password: 'secret', setting: bcrypt }), bcrypt);
  });

  test('refuses unknown jobs and settings with an error, and lives on', async (t) => {
    const pool = new HashPool({ size: 1 });
    t.after(() => pool.close());
    await assert.rejects(pool.run({ op: 'nope' }), /unknown job/);
    await assert.rejects(
      pool.run({ op: 'crypt', password: 'x', setting: '$1$abc' }),
      /unsupported crypt setting/,
    );
    await assert.rejects(pool.run({ op: 'crypt', password: 'x', setting: '$6$sa:lt' }), /Invalid salt/);
    assert.equal(pool.stats().started, 1);
  });
});

/** Counts event-loop turns (setImmediate callbacks) while `work` runs. */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let isDone = false;
  const turn = () => {
    turns += 1;
    if (!isDone) setImmediate(turn);
  };
  setImmediate(turn);
  await work();
  isDone = true;
  return turns;
}

describe('slow hashes run off the event loop', () => {
  // doveadm pw -s BLF-CRYPT -r 12 -p 'secret': 4096 rounds of bcrypt, about a second in JavaScript.
  const BCRYPT_12 = '{BLF-CRYPT}$2y$12$NP2K7pDlvQfX.U4Xm/mtquHzlX689xkbJP49.RrVszEt3VtA1O5Eu';

  test('verifying a bcrypt hash of cost 12 leaves the event loop turning', async () => {
    const { scheme, data } = parseStoredPassword(BCRYPT_12) as StoredPassword;
    let isMatch = false;
    const turns = await turnsDuring(async () => {
      isMatch = await scheme.verify('secret', data);
    });
    assert.equal(isMatch, true);
    // On the main thread the count would be 0 or 1 (see the next test); a thousand-odd turns show
    // the loop kept running. A count, not a timing: a slower machine only gives more turns.
    assert.ok(turns >= 100, `only ${turns} event-loop turns during the hash`);
  });

  test('(the measure detects a hash that blocks the loop)', async () => {
    const turns = await turnsDuring(() => Promise.resolve(crypt('secret', '$2y$08$NP2K7pDlvQfX.U4Xm/mtqu')));
    assert.ok(turns <= 1, `${turns} turns`);
  });

  test('so do SHA-crypt and Argon2', async () => {
    const fields = [
      // doveadm pw -s SHA512-CRYPT -r 10000 -p 'secret'
      '{SHA512-CRYPT}$6$rounds=10000$ogXtdHg3WLaVXdU5$9Xd/B60jYbhFkZOKIoPrsc2p/ZN./dwQagT81nttXBg9ymiVaUO4cqcwxitL65LMSYSGt918GCb0GEW7xBmmT1',
      // doveadm pw -s ARGON2ID -p 'secret'
      '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$l/Undd4R+/ixOhQNqOkVug$aUC9Fw1yWLetAPEL8qdmLk3rlhyudILUyDI0si5H7ps',
    ];
    for (const field of fields) {
      const { scheme, data } = parseStoredPassword(field) as StoredPassword;
      const turns = await turnsDuring(async () => {
        assert.equal(await scheme.verify('secret', data), true);
      });
      assert.ok(turns >= 10, `${scheme.name}: ${turns} turns`);
    }
  });
});

describe('the default pool', () => {
  test('is made on first use and can be configured and closed', async () => {
    await configureHashPool({ size: 1, jobTimeoutMs: 5_000 });
    const pool = defaultHashPool();
    assert.equal(pool.size, 1);
    assert.equal(pool.jobTimeoutMs, 5_000);
    assert.equal(defaultHashPool(), pool);
    assert.equal(
      await pool.run({ op: 'crypt', password: 'secret', setting: '$5$Bgcfy5i/S9rzsyJl' }),
      '$5$Bgcfy5i/S9rzsyJl$we7RyVN0ro4HXzt8P5g3Lar3AuZKxHtqbGCvspTA7BB',
    );
    await closeDefaultHashPool();
    assert.equal(pool.stats().workers, 0);
    await assert.rejects(configureHashPool({ size: 0 }), RangeError);
    await configureHashPool({});
    assert.notEqual(defaultHashPool(), pool, 'configuring replaces the pool');
  });

  test('keeps no process alive: a script that hashes exits by itself once it has the result', async () => {
    // Under tsx, the child imports the .ts module with tsx's loader; compiled, the .js module.
    const isSource = import.meta.url.endsWith('.ts');
    const passwords = new URL(
      isSource ? '../../../../src/auth/passwords/registry.ts' : '../../../../src/auth/passwords/registry.js',
      import.meta.url,
    );
    const script = `
      const { hashPassword, parseStoredPassword } = await import(${JSON.stringify(passwords.href)});
      const field = await hashPassword('secret', 'SHA512-CRYPT');
      const { scheme, data } = parseStoredPassword(field);
      console.log(field.slice(0, 17), await scheme.verify('secret', data));
    `;
    const loader = isSource ? ['--import', import.meta.resolve('tsx')] : [];
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...loader, '--input-type=module', '--eval', script],
      { cwd: fileURLToPath(new URL('.', import.meta.url)), timeout: 20_000 },
    );
    assert.equal(stdout, '{SHA512-CRYPT}$6$ true\n');
  });
});
