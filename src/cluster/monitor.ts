import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { topUsersOf, totalsOf, type MonitoredPop3, type MonitoredSession } from '../monitor/handlers.js';
import type { CounterName, Counters } from '../pop3/stats.js';
import { sumUserBytes, topOf, TOP_USERS_REPORTED, type UserBytes } from '../pop3/user-traffic.js';
import type { ClusterConnection } from './redis.js';

/** A node's answer carries at most this many sessions (the monitor's JSON holds far fewer anyway). */
export const MAX_SESSIONS_PER_ANSWER = 2000;
export const DEFAULT_ANSWER_TIMEOUT_MS = 1000;
export const DEFAULT_NODE_TTL_MS = 15_000;

/** Every node's name, scored by when it stops counting as alive (Redis's clock, in ms). */
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

interface Ask {
  readonly id: string;
  readonly from: string;
  /** Checked when received: another version of Poplar may ask something this one does not know. */
  readonly kind: string;
  readonly user?: string;
  readonly message?: string;
}

interface Answer {
  readonly id: string;
  readonly node: string;
  readonly sessions?: MonitoredSession[];
  /** With the sessions: the node's counters and top users (absent from an older Poplar). */
  readonly counters?: Record<string, unknown>;
  readonly topUsers?: unknown;
  readonly ended?: number;
}

/** What another node last said of its counters and top users. */
interface NodeFigures {
  readonly counters: Partial<Record<CounterName, number>>;
  readonly topUsers: readonly UserBytes[];
}

/** The counters of an answer that are finite, non-negative numbers; the rest is dropped. */
function countersIn(answer: Answer): Partial<Record<string, number>> {
  const counters: Record<string, number> = {};
  for (const [key, value] of Object.entries(answer.counters ?? {}))
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) counters[key] = value;
  return counters;
}

/** The top users of an answer, if well formed (at most {@link TOP_USERS_REPORTED}). */
function topUsersIn(answer: Answer): UserBytes[] {
  if (!Array.isArray(answer.topUsers)) return [];
  return (answer.topUsers as unknown[])
    .slice(0, TOP_USERS_REPORTED)
    .filter(
      (e): e is UserBytes =>
        Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number' && Number.isFinite(e[1]),
    );
}

interface Pending {
  readonly waitingFor: Set<string>;
  readonly answers: Answer[];
  readonly done: () => void;
}

export interface ClusterMonitorOptions {
  /** How long an ask waits for the other nodes' answers; a node that is later is left out. */
  readonly answerTimeoutMs?: number;
  /** A node that has not said it is alive for this long is not waited for. */
  readonly nodeTtlMs?: number;
}

/**
 * What any node's monitor reads and steers, over every node: its sessions list (each session with
 * its node's name) and the end of a user's sessions (the count summed over the nodes). It wraps
 * this node's own {@link MonitoredPop3} (the server, or the pool of workers) and answers the
 * other nodes' asks with it.
 *
 * An ask is published on one channel; every live node (from a registry each node refreshes)
 * answers on the asker's channel; the asker waits at most `answerTimeoutMs`. A node that does not
 * answer in time is left out, logged, and named in {@link nodesMissing}. Redis unreachable: this
 * node's own sessions only, and every other node is missing.
 */
export class ClusterMonitoredPop3 implements MonitoredPop3 {
  readonly #cluster: ClusterConnection;
  readonly #local: MonitoredPop3;
  readonly #logger: Logger;
  readonly #answerTimeoutMs: number;
  readonly #nodeTtlMs: number;
  readonly #askChannel: string;
  readonly #nodesKey: string;
  readonly #pending = new Map<string, Pending>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #heartbeat: NodeJS.Timeout;
  #remote: MonitoredSession[] = [];
  /** The other nodes' figures, by node, as of their last answer. */
  #figures = new Map<string, NodeFigures>();
  #missing: readonly string[] = [];
  #liveNodes: readonly string[] = [];
  #isListening = false;

  constructor(
    cluster: ClusterConnection,
    local: MonitoredPop3,
    logger: Logger,
    options: ClusterMonitorOptions = {},
  ) {
    this.#cluster = cluster;
    this.#local = local;
    this.#logger = logger;
    this.#answerTimeoutMs = options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    this.#nodeTtlMs = options.nodeTtlMs ?? DEFAULT_NODE_TTL_MS;
    this.#askChannel = cluster.key('monitor', 'ask');
    this.#nodesKey = cluster.key('monitor', 'nodes');
    // This node says it is alive only once it hears the asks: the others would wait for it in vain.
    this.#unsubscribe.push(
      cluster.subscribe(
        this.#askChannel,
        (m) => {
          void this.#answer(m);
        },
        () => {
          this.#isListening = true;
          void this.#beat().catch(() => {});
        },
      ),
      cluster.subscribe(this.#replyChannel(cluster.nodeName), (m) => {
        this.#receive(m);
      }),
      cluster.onState((state) => {
        // Listening again once the subscription is back (the callback above).
        if (state === 'unreachable') this.#isListening = false;
      }),
    );
    this.#heartbeat = setInterval(
      () => {
        if (this.#isListening) void this.#beat().catch(() => {});
      },
      Math.max(1, Math.floor(this.#nodeTtlMs / 3)),
    );
    this.#heartbeat.unref();
  }

  get stats(): MonitoredPop3['stats'] {
    return this.#local.stats;
  }

  get limits(): MonitoredPop3['limits'] {
    return this.#local.limits;
  }

  /** The counters of every node: this one's now, the others' as of their last answer. */
  get totals(): Counters {
    const sum = totalsOf(this.#local);
    for (const { counters } of this.#figures.values())
      for (const key of Object.keys(sum) as CounterName[]) sum[key] += counters[key] ?? 0;
    return sum;
  }

  /** The users with the most bytes over the last 24 hours on every node. */
  topUsers(): readonly UserBytes[] {
    const here = topUsersOf(this.#local);
    const there = [...this.#figures.values()].map((f) => f.topUsers);
    return topOf(sumUserBytes([here, ...there]), TOP_USERS_REPORTED);
  }

  /** The nodes alive as of the last ask (heartbeat), this one included. */
  get nodes(): readonly string[] {
    return this.#liveNodes.length === 0 ? [this.#cluster.nodeName] : this.#liveNodes;
  }

  /** The nodes that did not answer the last ask in time. */
  get nodesMissing(): readonly string[] {
    return this.#missing;
  }

  setLimits(changes: Parameters<MonitoredPop3['setLimits']>[0]): unknown {
    return this.#local.setLimits(changes);
  }

  /** This node's sessions and, as of the last {@link refresh}, every other node's. */
  sessions(): readonly MonitoredSession[] {
    const node = this.#cluster.nodeName;
    return [...this.#local.sessions().map((s) => ({ ...s, node })), ...this.#remote];
  }

  async refresh(): Promise<void> {
    const [, answers] = await Promise.all([this.#local.refresh?.(), this.#ask({ kind: 'sessions' })]);
    this.#remote = answers.flatMap((a) => (Array.isArray(a.sessions) ? a.sessions : []));
    for (const answer of answers)
      this.#figures.set(answer.node, { counters: countersIn(answer), topUsers: topUsersIn(answer) });
    // A node that left the cluster counts no more; one that is only late keeps its last figures.
    const live = new Set(this.#liveNodes);
    for (const node of this.#figures.keys()) if (!live.has(node)) this.#figures.delete(node);
  }

  async endSessionsOf(user: string, message?: string): Promise<number> {
    const [here, answers] = await Promise.all([
      this.#local.endSessionsOf(user, message),
      this.#ask({ kind: 'end', user, ...(message === undefined ? {} : { message }) }),
    ]);
    return answers.reduce((sum, a) => sum + (typeof a.ended === 'number' ? a.ended : 0), here);
  }

  /** Leaves the registry and stops answering. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const off of this.#unsubscribe) off();
    await this.#cluster.run((r) => r.zrem(this.#nodesKey, this.#cluster.nodeName)).catch(() => {});
  }

  /** Says this node is alive (while it hears the asks); returns every live node. */
  async #beat(): Promise<readonly string[]> {
    const ttlMs = this.#isListening ? this.#nodeTtlMs : 0;
    const nodes = (await this.#cluster.run((r) =>
      r.eval(HEARTBEAT_SCRIPT, 1, this.#nodesKey, this.#cluster.nodeName, String(ttlMs)),
    )) as string[];
    this.#liveNodes = nodes;
    return nodes;
  }

  /** Asks every other live node; resolves with the answers that came within the timeout. */
  async #ask(ask: Omit<Ask, 'id' | 'from'>): Promise<Answer[]> {
    const self = this.#cluster.nodeName;
    let nodes: readonly string[];
    try {
      nodes = await this.#beat();
    } catch {
      // Redis unreachable: this node alone; the others are those last seen.
      this.#setMissing(this.#liveNodes.filter((n) => n !== self));
      return [];
    }
    const others = new Set(nodes.filter((n) => n !== self));
    if (others.size === 0) {
      this.#setMissing([]);
      return [];
    }
    const id = randomBytes(8).toString('hex');
    const answers: Answer[] = [];
    const finished = new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.#answerTimeoutMs);
      const pending: Pending = { waitingFor: others, answers, done };
      this.#pending.set(id, pending);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
    try {
      await this.#cluster.publish(this.#askChannel, JSON.stringify({ ...ask, id, from: self }));
    } catch {
      this.#pending.get(id)?.done();
    }
    await finished;
    this.#pending.delete(id);
    this.#setMissing([...others]);
    return answers;
  }

  /** Logged when the missing nodes change, not at every ask (the dashboard asks every few seconds). */
  #setMissing(nodes: readonly string[]): void {
    const isSame = nodes.length === this.#missing.length && nodes.every((n) => this.#missing.includes(n));
    this.#missing = nodes;
    if (nodes.length > 0 && !isSame)
      this.#logger.warn({ nodes }, 'cluster monitor: nodes did not answer in time and are left out');
  }

  #receive(message: string): void {
    let answer: Answer;
    try {
      answer = JSON.parse(message) as Answer;
    } catch {
      return;
    }
    const pending = this.#pending.get(answer.id);
    if (pending === undefined || !pending.waitingFor.delete(answer.node)) return;
    pending.answers.push(answer);
    if (pending.waitingFor.size === 0) pending.done();
  }

  /** Another node's ask: answered from this node's own server. */
  async #answer(message: string): Promise<void> {
    let ask: Ask;
    try {
      ask = JSON.parse(message) as Ask;
    } catch {
      return;
    }
    const node = this.#cluster.nodeName;
    if (ask.from === node || typeof ask.id !== 'string' || typeof ask.from !== 'string') return;
    try {
      let answer: Answer;
      if (ask.kind === 'sessions') {
        await this.#local.refresh?.();
        const sessions = this.#local
          .sessions()
          .slice(0, MAX_SESSIONS_PER_ANSWER)
          .map((s) => ({ ...s, node }));
        answer = {
          id: ask.id,
          node,
          sessions,
          counters: totalsOf(this.#local),
          topUsers: topUsersOf(this.#local),
        };
      } else if (ask.kind === 'end' && typeof ask.user === 'string') {
        const ended = await this.#local.endSessionsOf(ask.user, ask.message);
        if (ended > 0)
          this.#logger.info({ user: ask.user, from: ask.from, sessionsEnded: ended }, 'sessions ended');
        answer = { id: ask.id, node, ended };
      } else return;
      await this.#cluster.publish(this.#replyChannel(ask.from), JSON.stringify(answer));
    } catch (err) {
      this.#logger.debug({ err: String(err) }, 'cluster monitor: an ask was not answered');
    }
  }

  #replyChannel(node: string): string {
    return this.#cluster.key('monitor', 'reply', node);
  }
}
