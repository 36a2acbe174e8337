import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import { serveWorker } from '../workers/worker.js';
import { startWorkerPop3 } from './local-pop3.js';

/**
 * A POP3 worker process (node:cluster): it reads no flags or config file of its own but starts
 * from what the primary hands it, the configuration in force now (after any SIGHUP), so a file
 * edited or broken since start cannot change or stop a worker that replaces a dead one. Resolves
 * to the exit code.
 */
export async function workerMain(makeLogger: (config: DaemonConfig) => pino.Logger): Promise<number> {
  try {
    return await serveWorker((state) => startWorkerPop3(state, makeLogger));
  } catch {
    return 1; // serveWorker told the primary, which reports the failure once
  }
}
