import { EventEmitter } from 'node:events';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { checkedDecoySecret, randomDecoySecret } from '../auth/decoy.js';
import { AuthCache } from './auth-cache.js';
import type { Authenticator } from '../auth/types.js';
import { silentLogger, type Logger } from '../log.js';
import type { MailStore } from '../mailstore/types.js';
import { Pop3Connection, type ConnectionKind } from './connection.js';
import { resolveLimits, type Pop3Limits } from './limits.js';
import { isLoopbackAddress } from '../loopback.js';
import { mechanismMap, type SaslMechanismName } from './sasl/index.js';
import { TlsContexts, type Pop3TlsOptions } from './tls.js';
import type { EngineContext } from './session.js';
import type { Pop3ServerEvents, ListenOptions, SessionSnapshot } from './server-types.js';
import { ProxyGate } from './proxy-gate.js';
import type { ProxyEndpoint } from './proxy-protocol.js';
import { ServerStats } from './stats.js';
import { addressKey, LoginThrottle, type Throttle } from './throttle.js';
import { LocalConnectionSlots, type ConnectionRefusal, type ConnectionSlots } from './connection-slots.js';
import { enginePolicy, type Pop3PolicyOptions } from './user-policy.js';
import { en } from './text/en.js';

export type { ListenOptions, Pop3ServerEvents, SessionSnapshot } from './server-types.js';

/** The domain of APOP timestamps and CRAM-MD5 challenges when no `hostname` is given. */
export const DEFAULT_CHALLENGE_DOMAIN = 'poplar';

/** What {@link createServer} needs: the two backends, and optionally limits, TLS, a logger and policy. */
export interface Pop3ServerOptions extends Pop3PolicyOptions {
  /** Decides who may log in. */
  readonly authenticator: Authenticator;
  /** Where the mail is. */
  readonly store: MailStore;
  /** Any limit left out takes its default (see `DEFAULT_LIMITS`). */
  readonly limits?: Partial<Pop3Limits>;
  /** pino or anything with the same methods; silent by default. */
  readonly logger?: Logger;
  /**
   * Domain part of the APOP timestamp in the greeting and of the CRAM-MD5 challenge; `poplar` by
   * default, so that neither shows the machine's host name.
   */
  readonly hostname?: string;
  /** The CAPA `IMPLEMENTATION` text. */
  readonly implementation?: string;
  /** Certificates: STLS is offered, and `listen({ tls: true })` serves implicit TLS (POP3S). */
  readonly tls?: Pop3TlsOptions;
  /**
   * Allow cleartext logins (USER/PASS, SASL PLAIN and LOGIN, bearer tokens) on connections that
   * are neither TLS nor local. Off by default: passwords are not sent where they can be sniffed.
   */
  readonly allowCleartextLogin?: boolean;
  /** Which client addresses count as local for that policy; loopback by default. */
  readonly isLocalAddress?: (address: string) => boolean;
  /**
   * SASL mechanisms offered, by name and in this order (default: all of Poplar's, strongest
   * first); of these, CAPA and AUTH offer those the authenticator can serve.
   */
  readonly saslMechanisms?: readonly SaslMechanismName[];
  /**
   * Where open connections and failed logins are counted: in this server by default. The daemon's
   * workers pass counters kept by their primary, so that `maxConnections`, `maxConnectionsPerIp`
   * and the login throttle hold for the whole machine, not per process. An answer given as a
   * promise must come in bounded time (the socket waits for it unserved). For the daemon: these
   * types are not exported and may change.
   */
  readonly counters?: { readonly connections: ConnectionSlots; readonly loginThrottle: Throttle };
  /**
   * The secret (16 bytes or more) that SCRAM-SHA-256's made-up salt for an unknown name is derived
   * from. Give every server that serves the same users the same one, kept across restarts (the
   * daemon keeps it in `<maildir>/.poplar-secret`), and give it to the authenticator too
   * (`StaticAuthenticator`, `PasswdFileAuthenticator`); otherwise an unknown name's salt changes
   * between servers and restarts while a real user's does not. Default: random for this server.
   */
  readonly decoySecret?: Uint8Array;
  /**
   * Networks (`ADDRESS/PREFIX`, or one address) of load balancers whose connections must start
   * with a PROXY protocol v1 or v2 header (HAProxy's `send-proxy`, `send-proxy-v2`), read within
   * `proxyHeaderTimeoutMs`: the client address inside is the session's for everything. A
   * connection from these networks without a valid header, or one from elsewhere with a header, is
   * refused. Default: none.
   */
  readonly proxyProtocolFrom?: readonly string[];
}

/**
 * A POP3 server: listeners, the set of open connections and their limits. Storage and
 * authentication are the caller's (see `MailStore` and `Authenticator`).
 */
export class Pop3Server extends EventEmitter<Pop3ServerEvents> {
  readonly stats = new ServerStats();
  readonly #engine: EngineContext;
  readonly #hostname: string;
  readonly #listeners: Server[] = [];
  readonly #connections = new Set<Pop3Connection>();
  /** Open connections, in all and by address key (`addressKey`: IPv4, or an IPv6 /64). */
  readonly #slots: ConnectionSlots;
  /** Sockets waiting for the answer about their slot (counters kept elsewhere). */
  readonly #waiting = new Set<Socket>();
  readonly #proxy: ProxyGate;
  #isClosing = false;

  constructor(options: Pop3ServerOptions) {
    super();
    this.#hostname = options.hostname ?? DEFAULT_CHALLENGE_DOMAIN;
    const logger = options.logger ?? silentLogger;
    this.#proxy = new ProxyGate(options.proxyProtocolFrom ?? [], logger);
    this.#slots = options.counters?.connections ?? new LocalConnectionSlots();
    this.#engine = {
      authenticator: options.authenticator,
      store: options.store,
      limits: resolveLimits(options.limits),
      logger,
      stats: this.stats,
      implementation: options.implementation ?? 'Poplar',
      hostname: this.#hostname,
      decoySecret:
        options.decoySecret === undefined ? randomDecoySecret() : checkedDecoySecret(options.decoySecret),
      tls: options.tls === undefined ? undefined : new TlsContexts(options.tls),
      allowCleartextLogin: options.allowCleartextLogin ?? false,
      isLocalAddress: options.isLocalAddress ?? isLoopbackAddress,
      mechanisms: mechanismMap(options.saslMechanisms),
      onCommand: (info) => {
        this.emit('command', info);
      },
      onLogin: (info) => {
        this.emit('login', info);
      },
      loginThrottle: options.counters?.loginThrottle ?? new LoginThrottle(),
      authCache: new AuthCache(this.stats),
      ...enginePolicy(options),
    };
  }

  get logger(): Logger {
    return this.#engine.logger;
  }

  /** Opens one more listening socket; resolves to the bound address (use port 0 for any free port). */
  async listen(options: ListenOptions): Promise<AddressInfo> {
    if (this.#isClosing) throw new Error('server is closing');
    const isTls = options.tls === true;
    if (isTls && this.#engine.tls === undefined)
      throw new Error('implicit TLS needs the tls option (a certificate and key)');
    // allowHalfOpen: a client may send its commands and then shut down its sending side (as
    // `nc -N` does); it still wants every reply. The connection ends the socket itself.
    // Implicit TLS is accepted as plain TCP too, so that a connection counts against the limits
    // from its first moment; the connection then runs the handshake itself, within the login time.
    const listener = createNetServer({ allowHalfOpen: true }, (socket) => {
      this.#arrive(socket, isTls ? 'handshake' : 'plain');
    });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: options.host, port: options.port, ipv6Only: options.ipv6Only ?? true }, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (error) => {
      this.#engine.logger.error({ err: error }, 'listener error');
    });
    this.#listeners.push(listener);
    const address = listener.address() as AddressInfo;
    this.#engine.logger.info(
      { address: address.address, port: address.port, tls: options.tls === true },
      'listening',
    );
    return address;
  }

  /**
   * Replaces the certificates (a reload): handshakes that start afterwards use the new ones, open
   * sessions go on. Throws, changing nothing, when a key or certificate is unusable.
   */
  setTls(options: Pop3TlsOptions): void {
    const tls = this.#engine.tls;
    if (tls === undefined) throw new Error('the server was created without TLS');
    tls.update(options);
    this.#engine.logger.info({ sni: Object.keys(options.sni ?? {}) }, 'certificates reloaded');
  }

  /** Bound addresses of every listener. */
  addresses(): AddressInfo[] {
    return this.#listeners.map((l) => l.address() as AddressInfo);
  }

  /**
   * Serves a socket accepted elsewhere (the host program owns the listener). Create that listener
   * with `allowHalfOpen: true`, as `listen()` does: a client that sends its commands and then shuts
   * down its side must still get every reply.
   */
  handleConnection(socket: Socket, isTls = false): void {
    this.#arrive(socket, isTls ? 'tls' : 'plain');
  }

  /**
   * A new socket: from a `proxyProtocolFrom` network, its PROXY header is read first (before the
   * TLS handshake on the POP3S port), and the limits count the client it names. A socket whose TLS
   * the host program has done already had its header read there, if any.
   */
  #arrive(socket: Socket, kind: ConnectionKind): void {
    if (kind === 'tls' || this.#isClosing || !this.#proxy.takes(socket)) {
      this.#accept(socket, kind);
      return;
    }
    this.#proxy.read(socket, this.limits, (client, refusal) => {
      if (refusal === undefined) this.#accept(socket, kind, client);
      else this.#refuse(socket, kind, socket.remoteAddress ?? 'unknown', refusal);
    });
  }

  /**
   * Counts a new socket against the connection limits, or refuses it, and serves it. `tls`: the
   * handshake is done; `handshake`: a raw socket on the implicit-TLS port, the handshake comes first.
   * With counters kept elsewhere (a worker's, in the primary) the answer takes one round trip.
   */
  #accept(socket: Socket, kind: ConnectionKind, client?: ProxyEndpoint): void {
    const ip = client?.address ?? socket.remoteAddress ?? 'unknown';
    // Counted as the throttle counts: an IPv6 client by its /64, an IPv4-mapped one as IPv4.
    const key = addressKey(ip);
    if (this.#isClosing) {
      this.#refuse(socket, kind, ip, en.serverShuttingDown());
      return;
    }
    const taken = this.#slots.take(key, this.limits);
    if (!(taken instanceof Promise)) {
      this.#admit(socket, kind, ip, key, taken, client);
      return;
    }
    // The client may reset the connection while the answer is on its way.
    const ignore = (): void => {};
    socket.on('error', ignore);
    this.#waiting.add(socket);
    void taken.then((refusal) => {
      this.#waiting.delete(socket);
      socket.off('error', ignore);
      if (refusal === undefined && (this.#isClosing || socket.destroyed)) {
        this.#slots.release(key);
        if (socket.destroyed) return;
        this.#refuse(socket, kind, ip, en.serverShuttingDown());
        return;
      }
      this.#admit(socket, kind, ip, key, refusal, client);
    });
  }

  #refuse(socket: Socket, kind: ConnectionKind, ip: string, refusal: string): void {
    this.stats.connectionsRefused += 1;
    this.#engine.logger.info({ remote: ip, reason: refusal }, 'connection refused');
    this.emit('refuse', { remoteAddress: ip, reason: refusal });
    socket.on('error', () => {});
    // Before a TLS handshake, cleartext would only be a bad record to the client: just close.
    if (kind === 'handshake') socket.destroy();
    else {
      socket.end(`-ERR [SYS/TEMP] ${refusal}\r\n`);
      socket.destroySoon();
    }
  }

  /** Serves a socket that holds a connection slot under `key`, or refuses it with `refusal`. */
  #admit(
    socket: Socket,
    kind: ConnectionKind,
    ip: string,
    key: string,
    refusal: ConnectionRefusal | undefined,
    client: ProxyEndpoint | undefined,
  ): void {
    if (refusal !== undefined) {
      this.#refuse(socket, kind, ip, refusal);
      return;
    }
    const conn = new Pop3Connection(socket, this.#engine, this.#hostname, kind, client);
    this.#connections.add(conn);
    this.stats.connectionsTotal += 1;
    this.stats.connectionsOpen += 1;
    const log = conn.session.log;
    log.info(
      { remote: conn.info.remoteAddress, port: conn.info.remotePort, tls: conn.info.isTls },
      'connection opened',
    );
    this.emit('connect', conn.info);
    void conn.run().then((closed) => {
      this.#connections.delete(conn);
      this.#slots.release(key);
      this.stats.connectionsOpen -= 1;
      const remote = closed.remoteAddress;
      this.stats.recordClose(closed.user, conn.session.bytesOut);
      if (closed.user !== undefined) log.info({ user: closed.user, remote, ...closed.summary }, 'logout');
      log.info(
        { user: closed.user, remote, reason: closed.reason, ms: closed.durationMs },
        'connection closed',
      );
      this.emit('close', closed);
    });
  }

  /** The limits in force. */
  get limits(): Pop3Limits {
    return this.#engine.limits;
  }

  /**
   * Changes limits at run time (validated like the constructor's). Each limit is read when it is
   * needed, so a change applies to what starts afterwards: a new transfer, a new connection.
   */
  setLimits(changes: Partial<Pop3Limits>): Pop3Limits {
    const limits = resolveLimits({ ...this.#engine.limits, ...changes });
    this.#engine.limits = limits;
    return limits;
  }

  /** Forgets every password the authentication cache holds (SIGHUP), or `username`'s only. */
  flushAuthCache(username?: string): void {
    this.#engine.authCache.flush(username);
  }

  /** A snapshot of every open session, for monitoring. */
  sessions(): SessionSnapshot[] {
    return [...this.#connections].map((conn) => {
      const s = conn.session;
      return {
        id: s.info.id,
        user: s.user?.name,
        remoteAddress: s.info.remoteAddress,
        state: s.state,
        startedAt: s.startedAt,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
      };
    });
  }

  /** Open connections right now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Ends every session of `user` without UPDATE (nothing is deleted). Returns how many were ended.
   */
  endSessionsOf(user: string, message = en.endedByAdministrator()): number {
    let ended = 0;
    for (const conn of this.#connections) {
      if (conn.session.user?.name === user) {
        conn.shutdown(message, 'kicked');
        ended += 1;
      }
    }
    return ended;
  }

  /**
   * Stops accepting, tells every open session `-ERR [SYS/TEMP] server shutting down` (after the
   * command it is running, if any) and closes it without UPDATE: nothing is deleted. Connections
   * still open after `graceMs` are dropped.
   */
  async close(options: { readonly graceMs?: number } = {}): Promise<void> {
    this.#isClosing = true;
    const graceMs = options.graceMs ?? 5000;
    const listenersClosed = Promise.all(
      this.#listeners.map(
        (l) =>
          new Promise<void>((resolve) =>
            l.close(() => {
              resolve();
            }),
          ),
      ),
    );
    this.#listeners.length = 0;
    const drained = new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.#connections.size === 0) {
          this.off('close', check);
          resolve();
        }
      };
      this.on('close', check);
      check();
    });
    for (const conn of this.#connections) conn.shutdown(en.serverShuttingDown());
    // Not served yet: the slot, if it comes, is given back.
    for (const socket of this.#waiting) socket.destroy();
    this.#proxy.destroyAll();
    const timer = setTimeout(() => {
      for (const conn of this.#connections) conn.destroy();
    }, graceMs);
    await drained;
    clearTimeout(timer);
    await listenersClosed;
  }
}

/**
 * A POP3 server on the given authenticator and store; it listens once `listen()` is called, or
 * serves sockets handed to `handleConnection()`. Throws a `ConfigError` for a limit out of range.
 */
export function createServer(options: Pop3ServerOptions): Pop3Server {
  return new Pop3Server(options);
}
