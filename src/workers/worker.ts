import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { Pop3Limits } from '../pop3/limits.js';
import type { Pop3Server } from '../pop3/server.js';
import {
  isCounterMessage,
  statsData,
  type CounterMessage,
  type PrimaryMessage,
  type PrimaryRequest,
  type WorkerMessage,
} from './protocol.js';
import { decodeTls, type LiveChanges, type StateMessage, type WorkerState } from './state.js';
import { asError } from '../errors.js';

/** What a worker process serves and the primary steers, built before it listens and reports in. */
export interface WorkerServer {
  readonly pop3: Pop3Server;
  /** The worker's copy of the users file: re-read when the primary's copy changed. */
  readonly users: { reload(): Promise<unknown>; close(): void };
  readonly mailRoot: { root: string };
  readonly registry: Registry;
  /** SIGHUP in the primary: its new log level. */
  setLogLevel(level: string): void;
  /** Listens on the sockets shared with the other workers (bound by the primary). */
  listen(): Promise<void>;
  /** How long open sessions may take to finish on SIGTERM. */
  readonly shutdownGraceMs: number;
  readonly logger: Logger;
  /** What to close once the server has (the cluster's connection: sessions ending still use it). */
  readonly closeAfter?: () => Promise<void>;
}

/**
 * A POP3 worker of the cluster: serves POP3 on the sockets it shares with the other workers and
 * answers the primary; resolves to the exit code. `start` builds the server from the state the
 * primary sends first (its configuration, limits and mail root as they are now). What the primary
 * changes while the server is built (limits, mail root, a SIGHUP) is applied, in order, before the
 * worker listens, so a worker that replaces a dead one never serves with stale settings. The
 * primary has already checked the config, created the demo files and validated the certificates.
 * Stops when the primary says so (or on SIGTERM); SIGINT is left to the primary, which stops every
 * worker in order.
 */
export async function serveWorker(start: (state: WorkerState) => Promise<WorkerServer>): Promise<number> {
  const requests = holdRequests();
  let server: WorkerServer;
  try {
    server = await start(await stateFromPrimary());
  } catch (error) {
    requests.stop();
    send({ kind: 'failed', error: (error as Error).message });
    throw error;
  }
  const { users, pop3 } = server;
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  let isStopping = false;
  const shutdown = async (graceMs: number): Promise<void> => {
    if (isStopping) return;
    isStopping = true;
    users.close();
    await pop3.close({ graceMs });
    await server.closeAfter?.();
    resolveExit(0);
    // The IPC channel would keep the process alive.
    setImmediate(() => {
      if (process.connected) process.disconnect();
    });
  };
  // The requests held so far take effect now (their synchronous part: limits, root, certificates,
  // log level), before the first connection can arrive.
  requests.answer(server, shutdown);
  try {
    await server.listen();
  } catch (error) {
    requests.stop();
    users.close();
    send({ kind: 'failed', error: (error as Error).message });
    throw error;
  }
  process.on('SIGINT', () => {
    // The primary got it too and will stop this worker in order.
  });
  process.on('SIGTERM', () => {
    void shutdown(server.shutdownGraceMs);
  });
  send({ kind: 'listening', addresses: pop3.addresses() });
  return exited;
}

/** Asks the primary for the state to start with, and waits for it. */
function stateFromPrimary(): Promise<WorkerState> {
  return new Promise((resolve) => {
    const onMessage = (message: StateMessage | PrimaryMessage): void => {
      if (message.kind !== 'state') return;
      process.off('message', onMessage);
      resolve(message.state);
    };
    process.on('message', onMessage);
    send({ kind: 'starting' });
  });
}

/**
 * A worker's side of the cluster channel: the primary's requests, held from the moment the worker
 * asks for its state (the primary sends changes to a starting worker too) until `answer`, which
 * runs the held ones in order, then each as it comes.
 */
function holdRequests(): {
  answer(server: WorkerServer, shutdown: (graceMs: number) => Promise<void>): void;
  stop(): void;
} {
  const held: PrimaryMessage[] = [];
  let handle: ((message: PrimaryMessage) => void) | undefined;
  const onMessage = (message: PrimaryMessage | StateMessage | CounterMessage): void => {
    // The state is stateFromPrimary's; counter messages are for the counters (shared-limits.ts).
    if (isCounterMessage(message) || message.kind === 'state') return;
    if (handle === undefined) held.push(message);
    else handle(message);
  };
  process.on('message', onMessage);
  return {
    answer(server, shutdown) {
      handle = (message) => {
        void run(server, shutdown, message).then(
          (value) => {
            send({ kind: 'reply', id: message.id, value });
          },
          (error: unknown) => {
            server.logger.error(
              { request: message.kind, err: asError(error) },
              'request from the primary failed',
            );
            send({ kind: 'reply', id: message.id, error: String(error) });
          },
        );
      };
      for (const message of held.splice(0)) handle(message);
    },
    stop() {
      process.off('message', onMessage);
    },
  };
}

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

async function run(
  server: WorkerServer,
  shutdown: (graceMs: number) => Promise<void>,
  request: PrimaryRequest,
): Promise<unknown> {
  const { pop3 } = server;
  switch (request.kind) {
    case 'stats':
      return statsData(pop3.stats, pop3.sessions());
    case 'metrics':
      return server.registry.getMetricsAsJSON();
    case 'end-sessions':
      return pop3.endSessionsOf(request.user, request.message);
    // Logged by each worker (with its pid): the monitor shows only the primary's copy.
    case 'set-limits':
      applyLimits(server, request.limits);
      return undefined;
    case 'set-root':
      server.mailRoot.root = request.root;
      server.logger.info({ root: server.mailRoot.root }, 'mail root applied');
      return undefined;
    case 'reload-users':
      await server.users.reload();
      return undefined;
    case 'reload-all':
      applyChanges(server, request.changes);
      server.pop3.flushAuthCache();
      await server.users.reload();
      return undefined;
    case 'shutdown':
      return shutdown(request.graceMs);
  }
}

function applyLimits(server: WorkerServer, changes: Partial<Pop3Limits>): void {
  const limits = server.pop3.setLimits(changes);
  const applied = Object.fromEntries(Object.keys(changes).map((k) => [k, limits[k as keyof Pop3Limits]]));
  server.logger.info({ limits: applied }, 'limits applied');
}

/** SIGHUP's changes, each logged by the worker (with its pid). */
function applyChanges(server: WorkerServer, changes: LiveChanges): void {
  if (changes.limits !== undefined && Object.keys(changes.limits).length > 0)
    applyLimits(server, changes.limits);
  if (changes.tls !== undefined) server.pop3.setTls(decodeTls(changes.tls));
  if (changes.logLevel !== undefined) {
    server.logger.info({ logLevel: changes.logLevel }, 'log level applied');
    server.setLogLevel(changes.logLevel);
  }
}
