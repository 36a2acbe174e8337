import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';

/** Every key and channel Poplar writes in Redis starts with this, so that one Redis can serve other programs. */
export const KEY_PREFIX = 'poplar:';

/** The bounds of every Redis call: a dead or slow Redis costs a login this much at most, never a hang. */
export interface ClusterTimeouts {
  /** A command with no reply after this fails (ioredis `commandTimeout`). */
  readonly commandTimeoutMs: number;
  /** A connection attempt that has not completed after this is given up and retried. */
  readonly connectTimeoutMs: number;
  /** Reconnection waits grow by this per attempt, up to {@link reconnectMaxMs}. */
  readonly reconnectStepMs: number;
  readonly reconnectMaxMs: number;
}

export const DEFAULT_CLUSTER_TIMEOUTS: ClusterTimeouts = {
  commandTimeoutMs: 1000,
  connectTimeoutMs: 2000,
  reconnectStepMs: 100,
  reconnectMaxMs: 2000,
};

/** The settings a connection is made from (a `DaemonConfig` has them). */
export interface ClusterSettings {
  /** `redis://HOST:PORT[/DB]` or `rediss://HOST:PORT[/DB]` (TLS). */
  readonly cluster: string;
  /** A file holding the password (read once, trimmed); it wins over a password in the URL. */
  readonly clusterPasswordFile?: string | undefined;
  readonly nodeName: string;
}

/**
 * Redis could not be asked: it is unreachable, did not answer within the command timeout, or
 * refused the command. Callers fall back (the throttle, the limits, the monitor) or refuse
 * with `[SYS/TEMP]` (leases); it is never a crash.
 */
export class ClusterUnavailableError extends Error {
  override name = 'ClusterUnavailableError';
  readonly code = 'CLUSTER_UNAVAILABLE';
}

/** Whether Redis is answering, as this process last saw it. */
export type ClusterState = 'connecting' | 'reachable' | 'unreachable' | 'closed';

type MessageHandler = (message: string) => void;
/** ioredis's options as its constructor takes them under `exactOptionalPropertyTypes`. */
type Options = Omit<RedisOptions, 'replyMapping'>;

/**
 * This process's connection to the cluster's Redis: one client for commands and, made on the first
 * {@link subscribe}, a second for pub/sub (a subscribed connection takes no other command). Both
 * reconnect by themselves with a capped backoff; a command while disconnected fails at once
 * (`enableOfflineQueue: false`) with a {@link ClusterUnavailableError} from {@link run}.
 */
export class ClusterConnection {
  /** The command client, for callers that need a command {@link run} does not wrap (Lua scripts, MULTI). */
  readonly redis: Redis;
  readonly nodeName: string;
  readonly prefix = KEY_PREFIX;
  readonly timeouts: ClusterTimeouts;
  readonly #options: Options;
  readonly #logger: Logger;
  #subscriber: Redis | undefined;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  /** Called each time a channel's SUBSCRIBE has reached Redis (at first, and after every reconnect). */
  readonly #onSubscribed = new Map<string, Set<() => void>>();
  #state: ClusterState = 'connecting';
  readonly #stateListeners = new Set<(state: ClusterState) => void>();
  readonly #beforeClose: (() => Promise<void>)[] = [];

  constructor(settings: ClusterSettings, logger: Logger, timeouts: Partial<ClusterTimeouts> = {}) {
    this.nodeName = settings.nodeName;
    this.timeouts = { ...DEFAULT_CLUSTER_TIMEOUTS, ...timeouts };
    this.#logger = logger.child({ cluster: redactedUrl(settings.cluster) });
    this.#options = redisOptions(settings, this.timeouts);
    this.redis = new Redis(this.#options);
    this.redis.on('ready', () => {
      this.#setState('reachable');
    });
    this.redis.on('error', (err: Error) => {
      this.#setState('unreachable', err);
    });
    this.redis.on('close', () => {
      if (this.#state !== 'closed') this.#setState('unreachable');
    });
  }

  /** `poplar:` + the parts joined by `:`; every key Poplar writes is made here. */
  key(...parts: readonly string[]): string {
    return `${this.prefix}${parts.join(':')}`;
  }

  get state(): ClusterState {
    return this.#state;
  }

  /** Whether the command client is connected and ready now (a command would be sent, not refused). */
  get isReachable(): boolean {
    return this.redis.status === 'ready';
  }

  /** Calls `listener` at every change of {@link state} (after the log line). */
  onState(listener: (state: ClusterState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Runs `command` on the client; any failure (down, timeout, refused) becomes a {@link ClusterUnavailableError}. */
  async run<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.#state === 'closed') throw new ClusterUnavailableError('the cluster connection is closed');
    try {
      return await command(this.redis);
    } catch (err) {
      throw asUnavailable(err);
    }
  }

  /** PING, for `poplar check-config` and readiness: resolves when Redis answers, else rejects typed. */
  async ping(): Promise<void> {
    await this.run((r) => r.ping());
  }

  /**
   * Resolves once the first connection attempt has ended, ready or not (bounded by the connect
   * timeout): the daemon starts either way, and its callers fall back while Redis is down.
   */
  async settled(): Promise<void> {
    if (this.#state !== 'connecting') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.timeouts.connectTimeoutMs);
      const off = this.onState(done);
      function done(): void {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }

  /**
   * Calls `handler` with every message published on `channel` (a full name, from {@link key}),
   * from now on and again after Redis comes back; returns the unsubscribe. `onSubscribed` is
   * called each time the subscription is in place in Redis (at first and after each reconnect):
   * only from then on are messages on `channel` received.
   */
  subscribe(channel: string, handler: MessageHandler, onSubscribed?: () => void): () => void {
    const subscriber = this.#subscriberClient();
    if (onSubscribed !== undefined) {
      const callbacks = this.#onSubscribed.get(channel) ?? new Set();
      callbacks.add(onSubscribed);
      this.#onSubscribed.set(channel, callbacks);
    }
    let handlers = this.#handlers.get(channel);
    if (handlers === undefined) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
      if (subscriber.status === 'ready') this.#subscribeOn(subscriber, [channel]);
    }
    handlers.add(handler);
    return () => {
      const set = this.#handlers.get(channel);
      if (set === undefined) return;
      set.delete(handler);
      if (onSubscribed !== undefined) this.#onSubscribed.get(channel)?.delete(onSubscribed);
      if (set.size > 0) return;
      this.#handlers.delete(channel);
      if (subscriber.status === 'ready') subscriber.unsubscribe(channel).catch(() => {});
    };
  }

  /** Publishes `message` on `channel`; rejects typed when Redis cannot be reached. */
  async publish(channel: string, message: string): Promise<number> {
    return this.run((r) => r.publish(channel, message));
  }

  /**
   * Runs `hook` at {@link close}, before the clients go (while Redis can still be told): the
   * users of the connection take their state out of Redis there.
   */
  beforeClose(hook: () => Promise<void>): void {
    this.#beforeClose.push(hook);
  }

  /**
   * Runs the {@link beforeClose} hooks, then closes both clients (QUIT, bounded by the command
   * timeout, then the socket is dropped).
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const hooks = this.#beforeClose.splice(0);
    await Promise.all(hooks.map((hook) => hook().catch(() => {})));
    this.#setState('closed');
    const clients = [this.redis, ...(this.#subscriber === undefined ? [] : [this.#subscriber])];
    await Promise.all(clients.map(closeClient));
  }

  #subscriberClient(): Redis {
    if (this.#subscriber !== undefined) return this.#subscriber;
    // Channels are subscribed again by hand at every 'ready', once each (not ioredis's resubscribe,
    // which knows only the channels whose SUBSCRIBE reached Redis).
    const subscriber = new Redis({ ...this.#options, autoResubscribe: false });
    subscriber.on('error', () => {
      // The command client's state lines say it; one connection's errors are enough in the log.
    });
    subscriber.on('ready', () => {
      this.#subscribeOn(subscriber, [...this.#handlers.keys()]);
    });
    subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) handler(message);
    });
    this.#subscriber = subscriber;
    return subscriber;
  }

  #subscribeOn(subscriber: Redis, channels: readonly string[]): void {
    if (channels.length === 0) return;
    subscriber.subscribe(...channels).then(
      () => {
        for (const channel of channels)
          for (const callback of this.#onSubscribed.get(channel) ?? []) callback();
      },
      (err: unknown) => {
        this.#logger.debug({ err: String(err) }, 'cluster subscribe failed; retried on reconnect');
      },
    );
  }

  #setState(state: ClusterState, err?: Error): void {
    const was = this.#state;
    if (state === was || was === 'closed') return;
    this.#state = state;
    if (state === 'reachable')
      this.#logger.info(
        { node: this.nodeName },
        was === 'unreachable' ? 'cluster reachable again' : 'cluster connected',
      );
    else if (state === 'unreachable')
      this.#logger.warn(
        { node: this.nodeName, ...(err === undefined ? {} : { err: err.message }) },
        'cluster unreachable',
      );
    for (const listener of this.#stateListeners) listener(state);
  }
}

/** Makes the connection (it connects in the background; {@link ClusterConnection.settled} waits for the first try). */
export function connectCluster(
  settings: ClusterSettings,
  logger: Logger,
  timeouts: Partial<ClusterTimeouts> = {},
): ClusterConnection {
  return new ClusterConnection(settings, logger, timeouts);
}

/** Any failure of a Redis call as the one typed error, the original kept as its cause. */
export function asUnavailable(err: unknown): ClusterUnavailableError {
  if (err instanceof ClusterUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ClusterUnavailableError(`cluster unavailable: ${message}`, { cause: err });
}

/** The URL without its password, for logs and `print-config`. */
export function redactedUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)([^@/]*)@/i, (_m, scheme: string, user: string) => {
    const name = user.split(':', 1)[0] ?? '';
    return `${scheme}${name === '' ? '' : `${name}:`}***@`;
  });
}

function redisOptions(settings: ClusterSettings, timeouts: ClusterTimeouts): Options {
  let url: URL;
  try {
    url = new URL(settings.cluster);
  } catch {
    throw new ConfigError('cluster must be redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB]', {
      settings: ['cluster'],
    });
  }
  const isTls = url.protocol === 'rediss:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const db = url.pathname.replace(/^\//, '').replace(/\/$/, '');
  const password =
    settings.clusterPasswordFile === undefined
      ? decodeURIComponent(url.password) || undefined
      : readPasswordFile(settings.clusterPasswordFile);
  const username = decodeURIComponent(url.username) || undefined;
  return {
    host,
    port: url.port === '' ? 6379 : Number(url.port),
    ...(db === '' ? {} : { db: Number(db) }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(isTls ? { tls: { servername: host } } : {}),
    connectionName: `poplar-${settings.nodeName}`,
    enableOfflineQueue: false,
    commandTimeout: timeouts.commandTimeoutMs,
    connectTimeout: timeouts.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    // Reconnect for ever, the wait growing by a step per attempt up to the cap.
    retryStrategy: (times: number) => Math.min(times * timeouts.reconnectStepMs, timeouts.reconnectMaxMs),
    autoResendUnfulfilledCommands: false,
  };
}

function readPasswordFile(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`clusterPasswordFile ${path} cannot be read (${code})`, {
      settings: ['clusterPasswordFile'],
    });
  }
}

async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    // QUIT is bounded by the command timeout; whatever happens, the socket goes.
    await client.quit().catch(() => {});
  }
  client.disconnect(false);
}
