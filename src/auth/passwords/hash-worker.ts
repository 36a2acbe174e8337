import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { encrypt } from 'unixcrypt';
import type { WorkerReply, WorkerRequest } from './hash-pool.js';

/**
 * The hash pool's worker: computes crypt(3) hashes in JavaScript, off the main thread. Loaded by
 * hash-pool.ts as a worker, never imported by the main thread.
 */

/** `crypt(password, setting)`, as libc's crypt(3): the setting selects the algorithm and its salt. */
export interface CryptJob {
  readonly op: 'crypt';
  readonly password: string;
  /**
   * `$6$[rounds=N$]salt` (SHA-512-crypt), `$5$[rounds=N$]salt` (SHA-256-crypt) or
   * `$2b$NN$salt22` / `$2y$` / `$2a$` (bcrypt). A whole stored hash works too for bcrypt;
   * for SHA-crypt, cut the hash off after the salt.
   */
  readonly setting: string;
}

export function crypt(password: string, setting: string): string {
  if (/^\$[56]\$/.test(setting)) return encrypt(password, setting);
  // bcryptjs reads the cost and the 22 salt characters after the prefix and ignores the rest.
  if (/^\$2[aby]\$/.test(setting)) return bcrypt.hashSync(password, setting);
  throw new Error('unsupported crypt setting');
}

function run(job: unknown): unknown {
  const { op, password, setting } = (job ?? {}) as Partial<CryptJob>;
  if (op === 'crypt' && typeof password === 'string' && typeof setting === 'string') {
    return crypt(password, setting);
  }
  throw new Error('unknown job');
}

const port = parentPort;
port?.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { id: request.id, isOk: true, value: run(request.job) };
  } catch (error) {
    // Library messages name the setting's problem, never the password.
    reply = { id: request.id, isOk: false, message: error instanceof Error ? error.message : 'hash failed' };
  }
  port.postMessage(reply);
});
