import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Registry } from 'prom-client';
import { MIN_TLS_VERSION } from '../pop3/tls.js';

/** One page of the metrics listener: `GET <path>` answers what `handle` writes. */
export type MetricsRoute = (req: IncomingMessage, res: ServerResponse) => void;

/** What answers the requests no route takes (the dashboard); `isSecure`: it came over TLS. */
export type MetricsFallback = (req: IncomingMessage, res: ServerResponse, isSecure: boolean) => void;

/** The first byte of a TLS handshake record: how one port tells HTTPS from plain HTTP. */
const TLS_HANDSHAKE = 0x16;

export interface MetricsHttpOptions {
  readonly host: string;
  readonly port: number;
  /**
   * How long one rendering of `/metrics` is served again (default 1000 ms): scrapes in a burst
   * cost one rendering (which, with workers, asks every worker), so they cannot slow POP3 down.
   * Only one rendering runs at a time; requests that come meanwhile wait for it. 0: no reuse.
   */
  readonly cacheMs?: number;
  /**
   * `GET /healthz`: resolves to true while the server serves (200 `ok`), false or a rejection
   * otherwise (503). Checks run one at a time, like renderings. Absent: always 200.
   */
  readonly isHealthy?: () => Promise<boolean>;
  /** Connections held at once (default 16); more are closed at once. */
  readonly maxConnections?: number;
  /** Time for a request's headers to arrive (default 2000 ms); then the connection is closed. */
  readonly headersTimeoutMs?: number;
  /** Answers every request that no route takes (absent: 404). */
  readonly fallback?: MetricsFallback;
  /**
   * Serve HTTPS as well, on the same port: a connection that opens with a TLS handshake gets
   * the context this returns for the name the client asks (SNI); any other is plain HTTP as before.
   */
  readonly tls?: (servername: string) => SecureContext;
}

export const DEFAULT_METRICS_CACHE_MS = 1000;

/**
 * An async computation shared by whoever asks while it runs, and its result reused for `reuseMs`
 * after it ends: however many ask at once, at most one runs.
 */
export function sharedResult<T>(compute: () => Promise<T>, reuseMs: number): () => Promise<T> {
  let running: Promise<T> | undefined;
  let last: { readonly value: T; readonly at: number } | undefined;
  return () => {
    if (last !== undefined && performance.now() - last.at < reuseMs) return Promise.resolve(last.value);
    running ??= compute().then(
      (value) => {
        running = undefined;
        last = { value, at: performance.now() };
        return value;
      },
      (error: unknown) => {
        running = undefined;
        throw error;
      },
    );
    return running;
  };
}

/**
 * The metrics listener: `GET /metrics` in Prometheus' text format and `GET /healthz`, each a
 * route in one table (another page is one more entry); everything else goes to `fallback` (the
 * dashboard, which has its own authentication), or is 404. The two routes have no authentication:
 * bind the listener to loopback or a private network.
 */
export async function serveMetrics(
  registry: Pick<Registry, 'metrics' | 'contentType'>,
  options: MetricsHttpOptions,
): Promise<{
  server: Server;
  address: AddressInfo;
  routes: Map<string, MetricsRoute>;
  /** Stops listening and closes idle connections; resolves once every connection has ended. */
  close: () => Promise<void>;
}> {
  const render = sharedResult(() => registry.metrics(), options.cacheMs ?? DEFAULT_METRICS_CACHE_MS);
  const isHealthy = options.isHealthy;
  const check = isHealthy === undefined ? () => Promise.resolve(true) : sharedResult(isHealthy, 0);
  const routes = new Map<string, MetricsRoute>([
    [
      '/metrics',
      (_req, res) => {
        render().then(
          (body) => {
            res.writeHead(200, { 'content-type': registry.contentType }).end(body);
          },
          (error: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`);
          },
        );
      },
    ],
    [
      '/healthz',
      (_req, res) => {
        const reply = (isOk: boolean): void => {
          res
            .writeHead(isOk ? 200 : 503, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
            .end(isOk ? 'ok\n' : 'unavailable\n');
        };
        check().then(reply, () => {
          reply(false);
        });
      },
    ],
  ]);
  const headersTimeoutMs = options.headersTimeoutMs ?? 2_000;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const route = req.method === 'GET' ? routes.get(req.url?.split('?')[0] ?? '') : undefined;
    if (route !== undefined) route(req, res);
    else if (options.fallback !== undefined)
      options.fallback(req, res, (req.socket as Partial<{ encrypted: boolean }>).encrypted === true);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };
  // Node checks these timeouts every connectionsCheckingInterval (30 s by default).
  const settings = { connectionsCheckingInterval: Math.min(1_000, headersTimeoutMs) };
  const server = createServer(settings, handle);
  const contextFor = options.tls;
  const secure =
    contextFor === undefined
      ? undefined
      : createHttpsServer(
          {
            ...settings,
            minVersion: MIN_TLS_VERSION,
            SNICallback: (name, done) => {
              done(null, contextFor(name));
            },
          },
          handle,
        );
  for (const s of [server, secure]) {
    if (s === undefined) continue;
    // A scraper is quick: a slow or idle client does not keep its place.
    s.headersTimeout = headersTimeoutMs;
    s.requestTimeout = Math.max(5_000, headersTimeoutMs);
    s.keepAliveTimeout = 5_000;
  }
  const maxConnections = options.maxConnections ?? 16;
  // With TLS, a plain socket server takes the connections and hands each to the HTTP or the HTTPS
  // server by its first byte; a client that sends nothing is dropped after the headers timeout.
  const listener =
    secure === undefined
      ? server
      : createNetServer((socket: Socket) => {
          socket.setTimeout(headersTimeoutMs, () => socket.destroy());
          socket.once('data', (first: Buffer) => {
            socket.setTimeout(0);
            socket.pause();
            socket.unshift(first);
            // The TLS socket reads what is buffered itself; the HTTP parser takes it as 'data'.
            if (first[0] === TLS_HANDSHAKE) secure.emit('connection', socket);
            else {
              server.emit('connection', socket);
              socket.resume();
            }
          });
        });
  listener.maxConnections = maxConnections;
  // Servers that are handed their connections check their timeouts once told they listen.
  if (listener !== server) for (const s of [server, secure]) s?.emit('listening');
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host: options.host, port: options.port }, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      listener.close(() => {
        resolve();
      });
      for (const s of [server, secure]) {
        s?.closeIdleConnections();
        // Stops the timeout checks of the servers that did not listen themselves.
        if (s !== listener) s?.close(() => undefined);
      }
    });
  return { server, address: listener.address() as AddressInfo, routes, close };
}
