import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { MonitoredPop3 } from '../monitor/handlers.js';
import { canonicalUserName } from '../user.js';
import type { Asset } from './assets.js';
import type { DashboardAuth } from './auth.js';
import type { Sampler } from './sampler.js';
import type { KickAnswer, Update } from './web/state.js';

/** Every answer of the dashboard: no script but its own, no framing, no referrer. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Event streams open at once (each holds a connection of the listener); more get 503. */
export const DEFAULT_MAX_STREAMS = 8;
/** An event stream whose client has not read this much is closed (it reconnects, and catches up). */
const MAX_STREAM_BUFFER_BYTES = 1024 * 1024;
/** How often an open event stream checks that its admin still holds the credentials it opened with. */
const RECHECK_MS = 30_000;
/** The body of a kick: `{"user":"…"}` is far smaller. */
const MAX_KICK_BYTES = 1024;

export interface DashboardRoutesOptions {
  readonly auth: DashboardAuth;
  readonly sampler: Sampler;
  readonly assets: ReadonlyMap<string, Asset>;
  /** What a kick ends sessions on (every worker and node). */
  readonly pop3: Pick<MonitoredPop3, 'endSessionsOf'>;
  readonly logger: Logger;
  /** True when the listener is not on loopback: plain HTTP is refused (the page is over HTTPS only). */
  readonly requiresTls: boolean;
  readonly maxStreams?: number;
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res
    .writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    })
    .end(`${body}\n`);
}

function json(res: ServerResponse, value: unknown): void {
  res
    .writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify(value));
}

/**
 * The dashboard's HTTP side, behind the metrics listener's own routes: the page's files, its state
 * (`GET /api/state`), its event stream (`GET /api/events`) and the kick (`POST /api/kick`). Every
 * request needs an admin's credentials (see {@link DashboardAuth}); anything else gets 401.
 */
export class DashboardRoutes {
  readonly #options: DashboardRoutesOptions;
  readonly #streams = new Set<ServerResponse>();
  /** The last update as sent, serialised once for every stream. */
  #lastUpdate: { update: Update; text: string } | undefined;

  constructor(options: DashboardRoutesOptions) {
    this.#options = options;
  }

  handle(req: IncomingMessage, res: ServerResponse, isSecure: boolean): void {
    this.#handle(req, res, isSecure).catch((error: unknown) => {
      this.#options.logger.error({ err: error }, 'dashboard request failed');
      if (!res.headersSent) text(res, 500, 'internal error');
      else res.destroy();
    });
  }

  /** Ends the open event streams (at shutdown). */
  close(): void {
    for (const res of this.#streams) res.end();
    this.#streams.clear();
  }

  async #handle(req: IncomingMessage, res: ServerResponse, isSecure: boolean): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (this.#options.requiresTls && !isSecure) {
      const host = req.headers.host ?? '';
      // The page over plain HTTP would show the token to anyone on the way: it moves to HTTPS.
      if (req.method === 'GET' && path === '/' && /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host))
        text(res, 308, 'the dashboard is served over https only', { location: `https://${host}/` });
      else text(res, 403, 'the dashboard is served over https only');
      return;
    }
    const admission = await this.#options.auth.admit(req);
    if (admission.kind !== 'admin') {
      const retry =
        admission.kind === 'throttled'
          ? { 'retry-after': String(Math.ceil(admission.retryAfterMs / 1000)) }
          : {};
      text(res, 401, 'authentication required', {
        'www-authenticate': 'Basic realm="Poplar dashboard", charset="UTF-8"',
        ...retry,
      });
      return;
    }
    const { admin } = admission;
    if (path === '/api/kick') {
      if (req.method !== 'POST') text(res, 405, 'use POST', { allow: 'POST' });
      else await this.#kick(req, res, admin, isSecure);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      text(res, 405, 'use GET', { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/api/state')
      json(res, this.#options.sampler.initial(admin, this.#options.auth.csrfToken(admin)));
    else if (path === '/api/events') this.#stream(req, res, admin);
    else this.#asset(req, res, path);
  }

  #asset(req: IncomingMessage, res: ServerResponse, path: string): void {
    const asset = this.#options.assets.get(path);
    if (asset === undefined) {
      text(res, 404, 'not found');
      return;
    }
    const headers = {
      ...SECURITY_HEADERS,
      'content-type': asset.type,
      etag: asset.etag,
      'cache-control': 'private, no-cache',
      vary: 'accept-encoding, authorization',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers).end();
      return;
    }
    const isGzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
    const body = isGzip ? asset.gzipped : asset.body;
    res.writeHead(200, {
      ...headers,
      ...(isGzip ? { 'content-encoding': 'gzip' } : {}),
      'content-length': body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  #stream(req: IncomingMessage, res: ServerResponse, admin: string): void {
    const { sampler, auth, maxStreams = DEFAULT_MAX_STREAMS } = this.#options;
    if (this.#streams.size >= maxStreams) {
      text(res, 503, 'too many dashboards open', { 'retry-after': '10' });
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
    });
    res.write('retry: 3000\n\n');
    this.#streams.add(res);
    let checkedAt = Date.now();
    const unsubscribe = sampler.subscribe((update) => {
      if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
        res.destroy();
        return;
      }
      if (this.#lastUpdate?.update !== update) this.#lastUpdate = { update, text: JSON.stringify(update) };
      res.write(`event: update\ndata: ${this.#lastUpdate.text}\n\n`);
      if (Date.now() - checkedAt < RECHECK_MS) return;
      checkedAt = Date.now();
      void auth.isStillValid(req, admin).then((isValid) => {
        if (!isValid) res.end();
      });
    });
    res.once('close', () => {
      unsubscribe();
      this.#streams.delete(res);
    });
  }

  async #kick(req: IncomingMessage, res: ServerResponse, admin: string, isSecure: boolean): Promise<void> {
    const { auth, pop3, logger } = this.#options;
    // A form or a script of another site cannot send this header, nor JSON without a preflight
    // (which this server never allows); the token ties the request to a page this server sent.
    const origin = req.headers.origin;
    const ownOrigin = `${isSecure ? 'https' : 'http'}://${req.headers.host ?? ''}`;
    const site = req.headers['sec-fetch-site'];
    const csrf = req.headers['x-poplar-csrf'];
    if (
      !(req.headers['content-type'] ?? '').startsWith('application/json') ||
      (origin !== undefined && origin !== ownOrigin) ||
      (site !== undefined && site !== 'same-origin') ||
      !auth.isCsrfToken(admin, typeof csrf === 'string' ? csrf : undefined)
    ) {
      logger.warn(
        { admin, remote: req.socket.remoteAddress, origin },
        'dashboard kick refused: not from the page',
      );
      text(res, 403, 'refused: not sent by the dashboard page');
      return;
    }
    const body = await readBody(req, MAX_KICK_BYTES);
    let user: string | undefined;
    try {
      const parsed = JSON.parse(body ?? '') as unknown;
      const name = (parsed as { user?: unknown } | null)?.user;
      user = typeof name === 'string' ? canonicalUserName(name) : undefined;
    } catch {
      user = undefined;
    }
    if (user === undefined) {
      text(res, 400, 'expected {"user": "<a user name>"}');
      return;
    }
    const ended = await pop3.endSessionsOf(user);
    logger.info(
      { admin, user, sessionsEnded: ended, remote: req.socket.remoteAddress },
      'sessions ended from the dashboard',
    );
    json(res, { ended } satisfies KickAnswer);
  }
}

/** The request's body as text, or undefined when it is longer than `max` bytes (then not read on). */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
