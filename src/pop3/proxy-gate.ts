import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Pop3Limits } from './limits.js';
import { mappedIPv4 } from './throttle.js';
import { readProxyHeader } from './proxy-header-reader.js';
import type { ProxyEndpoint } from './proxy-protocol.js';
import { en } from './text/en.js';

/** Parses a `proxyProtocolFrom` network: `ADDRESS/PREFIX`, or a bare address (that one host). */
export function parseNetwork(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText, ...rest] = text.split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (family === undefined || rest.length > 0 || prefix < 0 || prefix > max)
    throw new ConfigError(`proxyProtocolFrom: ${JSON.stringify(text)} is not an ADDRESS/PREFIX network`, {
      settings: ['proxyProtocolFrom'],
    });
  return { address, prefix, family };
}

/** Why a connection from a trusted balancer was refused before its header was read. */
export const PROXY_BACKLOG_REFUSAL = en.tooManyWaitingForProxy();

/**
 * The PROXY protocol at accept (`proxyProtocolFrom`): a connection from one of the trusted
 * networks must start with a header, read here before the connection takes its slot, so that the
 * limits count the client the header names, not the balancer. Connections still reading a header
 * are at most `maxConnections`; each has `proxyHeaderTimeoutMs`.
 */
export class ProxyGate {
  readonly #trusted: BlockList | undefined;
  readonly #reading = new Set<Socket>();
  readonly #logger: Logger;

  /** `networks`: `ADDRESS/PREFIX` or a bare address, IPv4 or IPv6. Throws a ConfigError for a bad one. */
  constructor(networks: readonly string[], logger: Logger) {
    this.#logger = logger;
    if (networks.length === 0) return;
    const trusted = new BlockList();
    for (const network of networks) {
      const { address, prefix, family } = parseNetwork(network);
      trusted.addSubnet(address, prefix, family);
    }
    this.#trusted = trusted;
  }

  /** Whether a connection from `address` must start with a PROXY header. */
  isTrusted(address: string | undefined): boolean {
    if (this.#trusted === undefined || address === undefined) return false;
    // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d; the networks name it as IPv4.
    const ip = mappedIPv4(address) ?? address;
    return this.#trusted.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
  }

  /**
   * Whether {@link read} must take `socket`: its peer is in a trusted network, or (with networks
   * set) it reset the connection before it was accepted, so its address is gone and it cannot be
   * told apart from a balancer's (HAProxy's plain TCP check does that).
   */
  takes(socket: Socket): boolean {
    if (this.#trusted === undefined) return false;
    return socket.remoteAddress === undefined || this.isTrusted(socket.remoteAddress);
  }

  /**
   * Reads the header of a socket from a trusted address, then calls `then` with the client's
   * address and port (for LOCAL and UNKNOWN, the balancer's own: its health checks), or with a
   * refusal when too many are waiting already. A socket without a valid header in time is
   * destroyed and logged: nothing of POP3 is said to it.
   */
  read(
    socket: Socket,
    limits: Pick<Pop3Limits, 'maxConnections' | 'proxyHeaderTimeoutMs'>,
    then: (client: ProxyEndpoint | undefined, refusal?: string) => void,
  ): void {
    if (this.#reading.size >= limits.maxConnections) {
      then(undefined, PROXY_BACKLOG_REFUSAL);
      return;
    }
    const remote = socket.remoteAddress;
    if (remote === undefined) {
      socket.destroy();
      this.#logger.debug({}, 'connection reset before it was accepted');
      return;
    }
    this.#reading.add(socket);
    // Read now: once the peer has reset the socket (a health check does at once), Node forgets it.
    const balancer = { address: remote, port: socket.remotePort ?? 0 };
    void readProxyHeader(socket, limits.proxyHeaderTimeoutMs).then((outcome) => {
      this.#reading.delete(socket);
      if (outcome.ok) {
        if (socket.destroyed) return;
        const { header } = outcome;
        then(header.command === 'proxy' ? header.source : balancer);
        return;
      }
      socket.on('error', () => {});
      socket.destroy();
      const received = outcome.receivedBytes;
      if (outcome.reason === 'closed' && received === 0) {
        // A balancer's plain TCP check, or a client that gave up: nothing to report.
        this.#logger.debug({ remote }, 'connection closed before its PROXY header');
      } else if (outcome.error?.code === 'NOT_PROXY' || (outcome.reason === 'timeout' && received === 0)) {
        // A client that reached this server directly, around the balancer; or a balancer without
        // send-proxy. One line each: both are configuration mistakes to fix.
        const reason = outcome.error?.code ?? outcome.reason;
        this.#logger.warn({ remote, reason }, 'PROXY protocol header expected: connection closed');
      } else {
        const reason = outcome.error?.code ?? outcome.reason;
        const detail = outcome.error?.message;
        this.#logger.warn(
          { remote, reason, received, ...(detail === undefined ? {} : { detail }) },
          'no valid PROXY protocol header: connection closed',
        );
      }
    });
  }

  /** Destroys the sockets still waiting for their header (the server is closing). */
  destroyAll(): void {
    for (const socket of this.#reading) socket.destroy();
  }
}
