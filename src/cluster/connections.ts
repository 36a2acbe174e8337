import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { ConnectionRefusal, type ConnectionLimits, type ConnectionSlots } from '../pop3/connection-slots.js';
import type { ClusterConnection } from './redis.js';

/**
 * Takes a slot for an address if every live process of the cluster together holds fewer than the
 * limit. Each process counts its connections in a hash of its own (address key -> count) that
 * expires unless refreshed, and is listed in a set; a listed process whose hash is gone holds
 * nothing (it died, or has no connection) and leaves the set.
 * KEYS: the set of processes, this process's hash. ARGV: address key, limit, hash prefix, this
 * process's id, the hash's ttl ms.
 */
const TAKE_SCRIPT = `
local total = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local n = redis.call('HGET', ARGV[3] .. id, ARGV[1])
  if n then total = total + tonumber(n)
  elseif id ~= ARGV[4] and redis.call('EXISTS', ARGV[3] .. id) == 0 then redis.call('SREM', KEYS[1], id) end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`;

/** Gives a slot back (never below 0: counts taken while Redis was away were never added). */
const RELEASE_SCRIPT = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`;

export interface ClusterSlotsOptions {
  /** How long a process's counts outlive its last refresh (a dead node's are forgotten after it). */
  readonly ttlMs?: number;
}

export const DEFAULT_CONNECTION_COUNTS_TTL_MS = 15_000;

/**
 * Connection slots for a cluster: `maxConnectionsPerIp` counts the address's connections on every
 * node (a client cannot multiply its allowance by the number of nodes); `maxConnections` stays
 * each node's own capacity, which the `local` slots check (this process's, or with workers the
 * primary's for the machine) before Redis is asked.
 *
 * Each process's counts live in Redis under an id of its own (node name + a random part, so a
 * restarted process never inherits a dead one's counts) with a TTL that a heartbeat refreshes:
 * a node that dies stops refreshing and its counts are gone after `ttlMs`. When Redis comes back
 * (it may have lost everything), the process writes its counts again from its own table.
 *
 * Redis unreachable: the local slots alone decide (per-node counting, as without `--cluster`),
 * logged once per outage; a connection is never refused because Redis is down.
 */
export class ClusterSlots implements ConnectionSlots {
  readonly #cluster: ClusterConnection;
  readonly #local: ConnectionSlots;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #id: string;
  readonly #setKey: string;
  readonly #hashKey: string;
  /** What this process holds, by address key: what Redis should say about it. */
  readonly #held = new Map<string, number>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #offState: () => void;
  #isFallingBack = false;
  /** Round trips to Redis for taken slots (for tests and the bench). */
  roundTrips = 0;

  constructor(
    cluster: ClusterConnection,
    local: ConnectionSlots,
    logger: Logger,
    options: ClusterSlotsOptions = {},
  ) {
    this.#cluster = cluster;
    this.#local = local;
    this.#logger = logger;
    this.#ttlMs = options.ttlMs ?? DEFAULT_CONNECTION_COUNTS_TTL_MS;
    this.#id = `${cluster.nodeName}:${randomBytes(6).toString('hex')}`;
    this.#setKey = cluster.key('conn', 'processes');
    this.#hashKey = cluster.key('conn', this.#id);
    this.#heartbeat = setInterval(
      () => {
        this.#refresh();
      },
      Math.max(1, Math.floor(this.#ttlMs / 3)),
    );
    this.#heartbeat.unref();
    this.#offState = cluster.onState((state) => {
      if (state === 'reachable') this.#rewrite();
    });
  }

  /** This process's id in Redis (`node:random`). */
  get id(): string {
    return this.#id;
  }

  async take(key: string, limits: ConnectionLimits): Promise<ConnectionRefusal | undefined> {
    const refusal = await this.#local.take(key, limits);
    if (refusal !== undefined) return refusal;
    try {
      this.roundTrips += 1;
      const taken = (await this.#cluster.run((r) =>
        r.eval(
          TAKE_SCRIPT,
          2,
          this.#setKey,
          this.#hashKey,
          key,
          String(limits.maxConnectionsPerIp),
          this.#cluster.key('conn', ''),
          this.#id,
          String(this.#ttlMs),
        ),
      )) as number;
      this.#sharedAgain();
      if (taken !== 1) {
        this.#local.release(key);
        return ConnectionRefusal.perAddress;
      }
    } catch (err) {
      this.#fallingBack(err);
    }
    this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    return undefined;
  }

  release(key: string): void {
    const held = this.#held.get(key);
    if (held === undefined) return;
    if (held <= 1) this.#held.delete(key);
    else this.#held.set(key, held - 1);
    this.#local.release(key);
    this.#cluster.run((r) => r.eval(RELEASE_SCRIPT, 1, this.#hashKey, key)).catch(() => {});
  }

  /** Stops the heartbeat and takes this process's counts out of Redis (a clean stop). */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#offState();
    await this.#cluster
      .run((r) => r.multi().del(this.#hashKey).srem(this.#setKey, this.#id).exec())
      .catch(() => {});
  }

  /** The heartbeat: this process's counts live another `ttlMs`. */
  #refresh(): void {
    if (this.#held.size === 0 || !this.#cluster.isReachable) return;
    this.#cluster
      .run((r) => r.multi().sadd(this.#setKey, this.#id).pexpire(this.#hashKey, this.#ttlMs).exec())
      .catch(() => {});
  }

  /** Redis is back (perhaps empty): what this process holds, written again whole. */
  #rewrite(): void {
    const multi = this.#cluster.redis.multi().del(this.#hashKey);
    if (this.#held.size > 0) {
      multi.hset(this.#hashKey, Object.fromEntries(this.#held));
      multi.pexpire(this.#hashKey, this.#ttlMs);
      multi.sadd(this.#setKey, this.#id);
    }
    this.#cluster.run(() => multi.exec()).catch(() => {});
  }

  #fallingBack(err: unknown): void {
    if (this.#isFallingBack) return;
    this.#isFallingBack = true;
    this.#logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'connection limits: the cluster cannot be reached; maxConnectionsPerIp counts this node only',
    );
  }

  #sharedAgain(): void {
    if (!this.#isFallingBack) return;
    this.#isFallingBack = false;
    this.#logger.info({}, 'connection limits: maxConnectionsPerIp counts every node again');
  }
}
