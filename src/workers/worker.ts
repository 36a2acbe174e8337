import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { Pop3Server } from '../pop3/server.js';
import { statsData, type PrimaryMessage, type PrimaryRequest, type WorkerMessage } from './protocol.js';

/** What a worker process serves that the primary may steer. */
export interface WorkerParts {
  readonly pop3: Pop3Server;
  readonly registry: Registry;
  readonly mailRoot: { root: string };
  reloadUsers(): Promise<void>;
  /** SIGHUP in the primary: users file and certificates. */
  reloadAll(): Promise<void>;
  /** Stops the server within `graceMs`, then the process exits. */
  shutdown(graceMs: number): Promise<void>;
  readonly logger: Logger;
}

/** A worker's side of the cluster channel: answers every request of the primary. */
export function answerPrimary(parts: WorkerParts): void {
  process.on('message', (message: PrimaryMessage) => {
    void run(parts, message).then(
      (value) => {
        send({ kind: 'reply', id: message.id, value });
      },
      (error: unknown) => {
        parts.logger.error({ request: message.kind, err: String(error) }, 'request from the primary failed');
        send({ kind: 'reply', id: message.id, error: String(error) });
      },
    );
  });
}

export function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

async function run(parts: WorkerParts, request: PrimaryRequest): Promise<unknown> {
  const { pop3 } = parts;
  switch (request.kind) {
    case 'stats':
      return statsData(pop3.stats, pop3.sessions());
    case 'metrics':
      return parts.registry.getMetricsAsJSON();
    case 'end-sessions':
      return pop3.endSessionsOf(request.user, request.message);
    case 'set-limits':
      pop3.setLimits(request.limits);
      return undefined;
    case 'set-root':
      parts.mailRoot.root = request.root;
      return undefined;
    case 'reload-users':
      return parts.reloadUsers();
    case 'reload-all':
      return parts.reloadAll();
    case 'shutdown':
      return parts.shutdown(request.graceMs);
  }
}
