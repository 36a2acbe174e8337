import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Pop3Error, RespCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import {
  inUseError,
  type FencedMaildropLease,
  type MaildropKey,
  type MaildropLocks,
} from '../mailstore/locks.js';
import { RefreshedLease } from '../mailstore/refreshed-lease.js';
import type { ClusterConnection } from './redis.js';

/**
 * Takes the lease if no one holds it (Redis has already dropped an expired one): the fencing
 * counter rises, and the lease holds "<fencing> <owner>" for the TTL. Otherwise returns what the
 * lease holds and its time left, for the log line. KEYS: lease, fencing counter. ARGV: owner, ttl ms.
 */
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current then return {0, current, redis.call('PTTL', KEYS[1])} end
local fencing = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fencing .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, fencing}
`;

/**
 * Refresh, and confirm before UPDATE: if the lease still holds exactly our value (owner AND fencing
 * number), it is given a whole TTL again. KEYS: lease. ARGV: value, ttl ms.
 */
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Release: removes the lease only if it still holds our value. KEYS: lease. ARGV: value. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');
const SCRIPTS = { acquire: ACQUIRE, extend: EXTEND, release: RELEASE } as const;
const SHAS = { acquire: sha1(ACQUIRE), extend: sha1(EXTEND), release: sha1(RELEASE) } as const;

/** Runs a script by its digest (EVALSHA), sending it whole only when this Redis does not know it yet. */
async function runScript(
  redis: Redis,
  name: keyof typeof SCRIPTS,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(SHAS[name], keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(SCRIPTS[name], keys.length, ...keys, ...args);
  }
}

export interface RedisMaildropLocksOptions {
  /** How long a lease lives unless refreshed (`lockTtl`); refreshed every third of it. Default 30 s. */
  readonly ttlMs?: number;
  readonly logger?: Logger;
}

/**
 * The maildrop lock of a cluster: a lease in Redis per maildrop, `poplar:lease:<user>:<path>`,
 * taken atomically with an owner (node, pid, random token) and a fencing number that rises at every
 * acquire (`poplar:fencing:<user>:<path>`, kept for ever), refreshed every third of the TTL by its
 * holder, and removed at release only if it is still the holder's. A dead node's leases expire
 * after the TTL. Redis unreachable: acquire rejects with `[SYS/TEMP]`; a holder that cannot
 * refresh its lease for two thirds of the TTL has lost it (`lost` aborts, `confirm()` rejects).
 * Every node of a mail root must name maildrops by the same path (the same `maildir` setting).
 */
export class RedisMaildropLocks implements MaildropLocks {
  readonly #cluster: ClusterConnection;
  readonly #ttlMs: number;
  readonly #log: Logger;

  constructor(cluster: ClusterConnection, options: RedisMaildropLocksOptions = {}) {
    this.#cluster = cluster;
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#log = options.logger ?? silentLogger;
  }

  async acquire(key: MaildropKey): Promise<RedisLease> {
    const cluster = this.#cluster;
    const leaseKey = cluster.key('lease', key.user, key.path);
    const fencingKey = cluster.key('fencing', key.user, key.path);
    const owner = `${cluster.nodeName}/${process.pid}/${randomBytes(8).toString('hex')}`;
    const sentAt = performance.now();
    let reply: unknown;
    try {
      reply = await cluster.run((r) => runScript(r, 'acquire', [leaseKey, fencingKey], [owner, this.#ttlMs]));
    } catch (error) {
      this.#log.warn({ user: key.user, err: errorText(error) }, 'maildrop lease cannot be taken');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, {
        cause: error,
        text: 'mailboxUnavailable',
      });
    }
    const [taken, value, pttl] = reply as [number, string | number, number | undefined];
    if (taken !== 1) {
      const holder = String(value);
      this.#log.info(
        { user: key.user, owner: holder.slice(holder.indexOf(' ') + 1).slice(0, 200), ttlMs: pttl },
        'maildrop lease held by another session',
      );
      throw inUseError();
    }
    const fencing = Number(value);
    return new RedisLease({
      cluster,
      key: leaseKey,
      value: `${fencing} ${owner}`,
      fencing,
      ttlMs: this.#ttlMs,
      sentAt,
      log: this.#log,
      user: key.user,
    });
  }
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** One lease, held and refreshed; see {@link RedisMaildropLocks}. */
export class RedisLease extends RefreshedLease implements FencedMaildropLease {
  readonly fencing: number;
  readonly #cluster: ClusterConnection;
  readonly #key: string;
  readonly #value: string;
  /**
   * performance.now() until which the lease is surely ours: the sending time of the last request
   * that extended it, plus the TTL (Redis set the expiry after it received the request).
   */
  #validUntil: number;

  constructor(init: {
    cluster: ClusterConnection;
    key: string;
    value: string;
    fencing: number;
    ttlMs: number;
    sentAt: number;
    log: Logger;
    user: string;
  }) {
    super(init.ttlMs, init.log, init.user);
    this.#cluster = init.cluster;
    this.#key = init.key;
    this.#value = init.value;
    this.fencing = init.fencing;
    this.#validUntil = init.sentAt + init.ttlMs;
  }

  /**
   * The margin kept before the lease could expire: a third of the TTL. A lease with less than
   * that left by this node's clock (its refreshes failed for two thirds of the TTL) is given up,
   * so a delete never starts, or goes on, on a lease about to expire.
   */
  get #marginMs(): number {
    return this.ttlMs / 3;
  }

  /**
   * In one script, the lease must still hold our owner token and our fencing number, and is then
   * given a whole TTL; safe to act on when the answer came back with more than the margin left.
   */
  protected async refresh(): Promise<boolean> {
    const sentAt = performance.now();
    try {
      const reply = await this.#cluster.run((r) =>
        runScript(r, 'extend', [this.#key], [this.#value, this.ttlMs]),
      );
      if (reply !== 1) {
        this.lose({}, 'maildrop lease lost: it expired or another session holds it');
        return false;
      }
      this.#validUntil = sentAt + this.ttlMs;
      return this.#validUntil - performance.now() > this.#marginMs;
    } catch (error) {
      const leftMs = Math.round(this.#validUntil - performance.now());
      if (leftMs <= this.#marginMs) {
        this.lose({ err: errorText(error), leftMs }, 'maildrop lease could not be refreshed in time');
      } else {
        this.log.warn(
          { user: this.user, err: errorText(error), leftMs },
          'maildrop lease could not be refreshed',
        );
      }
      return false;
    }
  }

  protected override lose(fields: object, message: string): void {
    super.lose({ fencing: this.fencing, ...fields }, message);
  }

  /** Removes the lease if it is still ours (a successor's is never touched). */
  protected async giveUp(): Promise<void> {
    try {
      await this.#cluster.run((r) => runScript(r, 'release', [this.#key], [this.#value]));
    } catch (error) {
      // Redis unreachable: the lease expires by itself after the TTL.
      this.log.warn({ user: this.user, err: errorText(error) }, 'maildrop lease not released; it expires');
    }
  }
}
