import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** One page of the metrics listener: `GET <path>` answers what `handle` writes. */
export type MetricsRoute = (req: IncomingMessage, res: ServerResponse) => void;

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
 * route in one table (another page is one more entry); everything else is 404. It has no
 * authentication: bind it to loopback or a private network.
 */
export async function serveMetrics(
  registry: Pick<Registry, 'metrics' | 'contentType'>,
  options: MetricsHttpOptions,
): Promise<{ server: Server; address: AddressInfo; routes: Map<string, MetricsRoute> }> {
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
  // Node checks these timeouts every connectionsCheckingInterval (30 s by default).
  const server = createServer(
    { connectionsCheckingInterval: Math.min(1_000, headersTimeoutMs) },
    (req, res) => {
      const route = req.method === 'GET' ? routes.get(req.url?.split('?')[0] ?? '') : undefined;
      if (route === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      route(req, res);
    },
  );
  // A scraper is quick: a slow or idle client does not keep its place.
  server.headersTimeout = headersTimeoutMs;
  server.requestTimeout = Math.max(5_000, headersTimeoutMs);
  server.keepAliveTimeout = 5_000;
  server.maxConnections = options.maxConnections ?? 16;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, address: server.address() as AddressInfo, routes };
}
