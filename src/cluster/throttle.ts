import type { Logger } from '../log.js';
import {
  addressKey,
  failureVerdict,
  LoginThrottle,
  userKey,
  type Throttle,
  type ThrottleCounts,
  type ThrottleLimits,
  type ThrottleVerdict,
} from '../pop3/throttle.js';
import type { ClusterConnection } from './redis.js';

/**
 * One failed login, counted in Redis in one round trip: the address's and the user name's
 * counters go up by one and live `window` ms from now (as the local tables forget a key
 * `authThrottleWindowMs` after its last failure), and the new counts are published to every node.
 * KEYS: the address counter, the user counter ('' when there is no name), the channel.
 * ARGV: window ms, the message's head (JSON without its counts).
 */
const FAIL_SCRIPT = `
local a = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local u = 0
if KEYS[2] ~= '' then
  u = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('PUBLISH', KEYS[3], ARGV[2] .. ',"addressFailures":' .. a .. ',"userFailures":' .. u .. '}')
return {a, u}
`;

/** The news one node publishes after a change of the counts, as every node receives it. */
interface ThrottleNews extends ThrottleCounts {
  readonly maxEntries: number;
}

/**
 * The login throttle of a cluster: failures are counted in Redis, so that a failure on one node
 * slows the next attempt of that address and that user name on every node.
 *
 * The engine asks `check()` synchronously, for every attempt that did not fail: it is answered
 * from this process's copy of the counts, which every node's failures keep up to date through
 * pub/sub (the `ThrottleCounts` path the workers already use with their primary). So a success
 * costs no round trip; a failure costs one (a Lua script: INCR + PEXPIRE + PUBLISH), and its
 * answer is the cluster's count.
 *
 * Redis unreachable, or a command that fails: the `local` throttle (this process's, or the
 * primary's with workers) counts and answers instead, logged once per outage; a login is never
 * refused because the throttle's store is down. `check()` takes the larger of the two verdicts,
 * so failures counted locally during an outage still count after it.
 */
export class ClusterThrottle implements Throttle {
  readonly #cluster: ClusterConnection;
  readonly #local: Throttle;
  readonly #logger: Logger;
  readonly #copy = new LoginThrottle();
  readonly #channel: string;
  readonly #unsubscribe: () => void;
  #isFallingBack = false;
  /** The limits of the last check or failure: what a success is judged under. */
  #limits: ThrottleLimits | undefined;
  /** Round trips to Redis for failed logins (for tests and the bench). */
  roundTrips = 0;

  constructor(cluster: ClusterConnection, local: Throttle, logger: Logger) {
    this.#cluster = cluster;
    this.#local = local;
    this.#logger = logger;
    this.#channel = cluster.key('throttle', 'news');
    this.#unsubscribe = cluster.subscribe(this.#channel, (message) => {
      this.#receive(message);
    });
  }

  check(address: string, user: string | undefined, limits: ThrottleLimits): ThrottleVerdict {
    this.#limits = limits;
    const shared = this.#copy.check(address, user, limits);
    const local = this.#local.check(address, user, limits);
    return local.delayMs > shared.delayMs ? local : shared;
  }

  async fail(address: string, user: string | undefined, limits: ThrottleLimits): Promise<ThrottleVerdict> {
    this.#limits = limits;
    const head = JSON.stringify({ address, user, maxEntries: limits.authThrottleMaxEntries }).slice(0, -1);
    try {
      this.roundTrips += 1;
      const [addressFailures, userFailures] = (await this.#cluster.run((r) =>
        r.eval(
          FAIL_SCRIPT,
          3,
          this.#cluster.key('throttle', 'a', addressKey(address)),
          user === undefined ? '' : this.#cluster.key('throttle', 'u', userKey(user)),
          this.#channel,
          String(limits.authThrottleWindowMs),
          head,
        ),
      )) as [number, number];
      this.#sharedAgain();
      // This process's copy now, not when the news comes back: the next check sees it.
      this.#copy.mirror({ address, addressFailures, user, userFailures }, limits.authThrottleMaxEntries);
      return failureVerdict(limits, addressFailures, userFailures);
    } catch (err) {
      this.#fallingBack(err);
      return this.#local.fail(address, user, limits);
    }
  }

  /**
   * A success forgets the user name's failures on every node, in the background; a name with no
   * failure in this process's copy (the usual case) costs no round trip at all.
   */
  succeed(user: string): void {
    const limits = this.#limits;
    const hadFailures = limits === undefined || this.#copy.check('', user, limits).userFailures > 0;
    this.#copy.succeed(user);
    this.#local.succeed(user);
    if (!hadFailures) return;
    const news: ThrottleNews = { addressFailures: 0, user, userFailures: 0, maxEntries: 1 };
    // Fire and forget: a success is never slowed; if Redis is down the count fades with its TTL.
    this.#cluster
      .run((r) =>
        r
          .multi()
          .del(this.#cluster.key('throttle', 'u', userKey(user)))
          .publish(this.#channel, JSON.stringify(news))
          .exec(),
      )
      .catch(() => {});
  }

  /** Stops listening to the other nodes' news. */
  close(): void {
    this.#unsubscribe();
  }

  #receive(message: string): void {
    let news: ThrottleNews;
    try {
      news = JSON.parse(message) as ThrottleNews;
    } catch {
      return;
    }
    if (typeof news.addressFailures !== 'number' || typeof news.userFailures !== 'number') return;
    const maxEntries = typeof news.maxEntries === 'number' ? news.maxEntries : 10_000;
    this.#copy.mirror(
      {
        address: typeof news.address === 'string' ? news.address : undefined,
        addressFailures: news.addressFailures,
        user: typeof news.user === 'string' ? news.user : undefined,
        userFailures: news.userFailures,
      },
      maxEntries,
    );
  }

  #fallingBack(err: unknown): void {
    if (this.#isFallingBack) return;
    this.#isFallingBack = true;
    this.#logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      "login throttle: the cluster's counts cannot be reached; this node's own counts apply",
    );
  }

  #sharedAgain(): void {
    if (!this.#isFallingBack) return;
    this.#isFallingBack = false;
    this.#logger.info({}, "login throttle: the cluster's counts apply again");
  }
}
