import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ConnectionRefusal, type ConnectionSlots } from '../../../src/pop3/connection-slots.js';
import { DEFAULT_LIMITS } from '../../../src/pop3/limits.js';
import type { CounterAsk } from '../../../src/workers/protocol.js';
import { PrimaryCounters, WorkerCounters, type PrimaryChannel } from '../../../src/workers/shared-limits.js';

const LIMITS = { ...DEFAULT_LIMITS, maxConnections: 10, maxConnectionsPerIp: 2 };

/** A primary and workers joined by in-process channels that deliver on a later turn, as IPC does. */
function machine(count: number, answerTimeoutMs?: number) {
  const workers = new Set<Worker>();
  const primary = new PrimaryCounters(() => workers);
  const join = () => {
    const channel = Object.assign(new EventEmitter(), { connected: true }) as EventEmitter &
      PrimaryChannel & { connected: boolean };
    const worker = {
      isConnected: () => channel.connected,
      send: (message: unknown, done?: () => void) => {
        setImmediate(() => channel.emit('message', message));
        done?.();
        return true;
      },
    } as unknown as Worker;
    channel.send = (message) => {
      setImmediate(() => {
        primary.answer(worker, message as CounterAsk);
      });
      return true;
    };
    workers.add(worker);
    return { worker, channel, counters: new WorkerCounters(channel, answerTimeoutMs) };
  };
  const sides = Array.from({ length: count }, join);
  return { primary, sides, join };
}

describe('PrimaryCounters and WorkerCounters', () => {
  test('connection slots are counted once over the workers, and a slot given back in one is free in another', async () => {
    const { primary, sides } = machine(2);
    const [a, b] = sides.map((s) => s.counters.connections);
    assert.ok(a !== undefined && b !== undefined);
    assert.equal(await a.take('192.0.2.1', LIMITS), undefined);
    assert.equal(await b.take('192.0.2.1', LIMITS), undefined);
    assert.equal(await a.take('192.0.2.1', LIMITS), ConnectionRefusal.perAddress);
    assert.equal(await a.take('192.0.2.2', LIMITS), undefined, 'another address has its own count');
    assert.equal(await b.take('192.0.2.2', { ...LIMITS, maxConnections: 3 }), ConnectionRefusal.total);
    assert.equal(primary.connections, 3);
    b.release('192.0.2.1');
    await nextTurn();
    assert.equal(await a.take('192.0.2.1', LIMITS), undefined);
    // A release the worker never took is ignored: counts cannot go below what is held.
    b.release('192.0.2.9');
    await nextTurn();
    assert.equal(primary.connections, 3);
  });

  test("a dead worker's slots are given back", async () => {
    const { primary, sides } = machine(2);
    const [a, b] = sides;
    assert.ok(a !== undefined && b !== undefined);
    for (let i = 0; i < 2; i++) assert.equal(await a.counters.connections.take('k', LIMITS), undefined);
    assert.equal(await b.counters.connections.take('k', LIMITS), ConnectionRefusal.perAddress);
    primary.forget(a.worker);
    assert.equal(primary.connections, 0);
    assert.equal(await b.counters.connections.take('k', LIMITS), undefined);
  });

  test("failures in one worker count in the other's copy; a success clears only the user's count", async () => {
    const { sides } = machine(2);
    const [a, b] = sides.map((s) => s.counters.loginThrottle);
    assert.ok(a !== undefined && b !== undefined);
    const limits = { ...LIMITS, authFailureDelayMs: 100 };
    assert.equal((await a.fail('2001:db8::1', 'bob', limits)).addressFailures, 1);
    const second = await b.fail('2001:db8::2', 'bob', limits);
    assert.deepEqual([second.addressFailures, second.userFailures, second.delayMs], [2, 2, 200]);
    await nextTurn();
    assert.deepEqual(a.check('2001:db8::3', 'bob', limits), {
      addressFailures: 2,
      userFailures: 2,
      delayMs: 200,
      isThrottled: true,
    });
    b.succeed('bob');
    await nextTurn();
    await nextTurn();
    const after = a.check('2001:db8::3', 'bob', limits);
    assert.deepEqual([after.addressFailures, after.userFailures], [2, 0]);
  });

  test('without the primary, waiting and new connections are refused at once and failures are counted locally', async () => {
    // A long timeout: the closed channel, not the timer, must end the wait.
    const { sides } = machine(1, 60_000);
    const [side] = sides;
    assert.ok(side !== undefined);
    const { channel, counters } = side;
    channel.send = () => true; // the primary never answers
    const waiting = counters.connections.take('k', LIMITS);
    const failing = counters.loginThrottle.fail('192.0.2.1', 'bob', LIMITS);
    channel.connected = false;
    channel.emit('disconnect');
    const settled = <T>(p: T | Promise<T>): Promise<T | 'still waiting'> =>
      Promise.race([p, nextTurn().then(() => 'still waiting' as const)]);
    assert.equal(await settled(waiting), ConnectionRefusal.unavailable);
    assert.equal(((await settled(failing)) as { addressFailures: number }).addressFailures, 1);
    assert.equal(await counters.connections.take('k', LIMITS), ConnectionRefusal.unavailable);
    assert.equal((await counters.loginThrottle.fail('192.0.2.1', 'bob', LIMITS)).addressFailures, 2);
  });

  test('a primary that does not answer in time: the connection is refused, and a slot it grants later is given back', async () => {
    const held: (() => void)[] = [];
    const { primary, sides } = machine(1, 1);
    const [side] = sides;
    assert.ok(side !== undefined);
    const { channel, worker, counters } = side;
    // The primary is slow: an ask reaches it only when the test says so.
    channel.send = (message) => {
      held.push(() => {
        primary.answer(worker, message as CounterAsk);
      });
      return true;
    };
    assert.equal(await counters.connections.take('k', LIMITS), ConnectionRefusal.unavailable);
    const failed = await counters.loginThrottle.fail('192.0.2.1', 'bob', LIMITS);
    assert.deepEqual([failed.addressFailures, failed.userFailures], [1, 1], 'judged by the copy');
    // The answers come after all: the slot was granted to a connection that was refused.
    const sent: unknown[] = [];
    channel.send = (message) => {
      sent.push(message);
      setImmediate(() => {
        primary.answer(worker, message as CounterAsk);
      });
      return true;
    };
    for (const deliver of held) deliver();
    assert.equal(primary.connections, 1);
    await nextTurn();
    await nextTurn();
    assert.deepEqual(sent, [{ kind: 'release-connection', key: 'k' }]);
    assert.equal(primary.connections, 0);
  });

  test('many takes and releases over workers, refusals and a dead worker bring the count back to zero', async () => {
    const { primary, sides } = machine(3);
    const keys = ['192.0.2.1', '192.0.2.2', '2001:db8::'];
    for (let round = 0; round < 20; round++) {
      const taken: [ConnectionSlots, string][] = [];
      for (const [i, side] of sides.entries()) {
        for (const key of keys) {
          const refusal = await side.counters.connections.take(key, LIMITS);
          if (refusal === undefined) taken.push([side.counters.connections, key]);
          else assert.ok(i > 0, 'the first worker has room for each address');
        }
      }
      for (const [slots, key] of taken) slots.release(key);
      await nextTurn();
      assert.equal(primary.connections, 0, `round ${round}`);
    }
    // A worker that dies holding slots: they come back with it.
    for (const key of keys) await sides[0]?.counters.connections.take(key, LIMITS);
    assert.equal(primary.connections, 3);
    if (sides[0] !== undefined) primary.forget(sides[0].worker);
    assert.equal(primary.connections, 0);
  });

  test('a worker that starts later (in place of a dead one) judges by the counts the machine has', async () => {
    const { sides, join } = machine(1);
    const throttle = sides[0]?.counters.loginThrottle;
    assert.ok(throttle !== undefined);
    const limits = { ...LIMITS, authFailureDelayMs: 100 };
    for (let i = 0; i < 3; i++) await throttle.fail('2001:db8::1', 'bob', limits);
    await throttle.fail('192.0.2.7', undefined, limits);
    const late = join().counters.loginThrottle;
    await nextTurn();
    await nextTurn();
    const seen = late.check('2001:db8::9', 'BOB', limits);
    assert.deepEqual([seen.addressFailures, seen.userFailures, seen.delayMs], [3, 3, 400]);
    assert.equal(late.check('192.0.2.7', 'carol', limits).addressFailures, 1);
    // News after the start still arrives, on top of what it was handed.
    await throttle.fail('192.0.2.7', 'carol', limits);
    await nextTurn();
    assert.equal(late.check('192.0.2.7', 'carol', limits).addressFailures, 2);
  });
});
