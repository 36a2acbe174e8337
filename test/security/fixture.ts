// Shared set-up for the hostile-input tests: the real daemon on a temporary folder holding a mail
// root, a users file, an admins file and a canary folder outside the mail root, plus helpers to
// snapshot folders, talk to the monitor and check the daemon's log.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { sendMonitorRequest } from '../../src/monitor/client.js';
import { ConfigTarget, GetTarget, type MonitorResponse } from '../../src/monitor/protocol/messages.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { monitorPort } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';
import { installCommand, onCI } from '../interop/require-binary.js';

import { DAEMON_ARGS } from './fuzz-target.js';
export { snapshot } from './fuzz-target.js';

/** The monitor token of every fixture's only admin, `ops`. */
export const ADMIN_TOKEN = 'Fx7-monitor.TOK9';

export interface SecurityDaemon {
  readonly d: RunningDaemon;
  /** The daemon's working directory; every path below is inside it. */
  readonly cwd: string;
  /** The mail root (`<cwd>/mail`). */
  readonly root: string;
  /** A folder outside the mail root that nothing may touch (`<cwd>/canary`, holding `secret.txt`). */
  readonly canary: string;
  readonly usersFile: string;
  readonly adminsFile: string;
  readonly pop3Port: number;
  readonly monitorPort: number;
}

export interface SecurityDaemonOptions {
  /** The users file's text (`--users <cwd>/users`). */
  readonly users: string;
  /** Lines of the `[limits]` table, on top of `authFailureDelayMs = 0`. */
  readonly limits?: readonly string[];
  readonly logLevel?: string;
  /** How long the daemon may take to start (default: the helper's). */
  readonly startTimeoutMs?: number;
  /** More daemon arguments (worked out after `prepare`, which may make the files they name). */
  readonly args?: readonly string[] | (() => readonly string[]);
  /** Runs before the daemon starts (to build maildirs, symbolic links...). */
  readonly prepare?: (paths: { cwd: string; root: string; canary: string }) => Promise<void>;
}

/** The canary file's content: a test that finds it in a reply has read outside the mail root. */
export const CANARY_SECRET = 'CANARY: this file lies outside the mail root\r\n';

/**
 * Starts `poplar --users users --admins admins -m mail --listen 127.0.0.1 -p 0` in a fresh temp
 * folder, with failed logins answered at once and the monitor on port 0.
 */
export async function startSecurityDaemon(
  t: TestContext,
  options: SecurityDaemonOptions,
): Promise<SecurityDaemon> {
  const cwd = await tempDir(t, 'poplar-security-');
  const root = join(cwd, 'mail');
  const canary = join(cwd, 'canary');
  await mkdir(root, { mode: 0o700 });
  await mkdir(join(canary, 'cur'), { recursive: true });
  await writeFile(join(canary, 'secret.txt'), CANARY_SECRET);
  await writeFile(join(canary, 'cur', '1700000000.canary.host:2,'), CANARY_SECRET);
  const usersFile = join(cwd, 'users');
  const adminsFile = join(cwd, 'admins');
  await writeFile(usersFile, options.users, { mode: 0o600 });
  await writeFile(adminsFile, `ops:${await hashPassword(ADMIN_TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  const limits = ['authFailureDelayMs = 0', ...(options.limits ?? [])];
  await writeFile(join(cwd, 'poplar.toml'), `[limits]\n${limits.join('\n')}\n`);
  await options.prepare?.({ cwd, root, canary });
  const extra = typeof options.args === 'function' ? options.args() : (options.args ?? []);
  const d = await startDaemon(t, {
    cwd,
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
    args: [...DAEMON_ARGS, '--log-level', options.logLevel ?? 'info', ...extra],
  });
  return {
    d,
    cwd,
    root,
    canary,
    usersFile,
    adminsFile,
    pop3Port: d.port,
    monitorPort: monitorPort(d.started),
  };
}

/** One monitor request with a given token (raw bytes or text) and DATA. */
export function monitorRequest(
  port: number,
  type: 'get' | 'config',
  target: number,
  data: Buffer | string = Buffer.alloc(0),
  token: string | Buffer = ADMIN_TOKEN,
  localAddress?: string,
): Promise<MonitorResponse> {
  const tokenBytes = typeof token === 'string' ? Buffer.from(token, 'latin1') : token;
  const bytes = Buffer.from(data);
  // The client takes names; any byte is let through here by going from the number to its name.
  const names = type === 'get' ? GetTarget : ConfigTarget;
  const name = Object.keys(names).find((k) => names[k as keyof typeof names] === target);
  if (name === undefined) throw new RangeError(`no ${type} target ${target}`);
  return sendMonitorRequest(
    { host: '127.0.0.1', port, timeoutMs: 30_000, ...(localAddress === undefined ? {} : { localAddress }) },
    type === 'get'
      ? { type, target: name as GetTarget, token: tokenBytes, data: bytes }
      : { type, target: name as keyof typeof ConfigTarget, token: tokenBytes, data: bytes },
  );
}

/**
 * Every line the daemon wrote on stdout is one JSON object with a numeric level, a string msg,
 * a pid, and nothing from `forbidden` in any message or field name.
 */
export function assertWellFormedLog(d: RunningDaemon, forbidden: readonly string[] = []): void {
  const lines = d.stdout().split('\n');
  assert.equal(lines.pop(), '', 'the log ends with a line end');
  for (const line of lines) {
    let entry: unknown;
    assert.doesNotThrow(
      () => {
        entry = JSON.parse(line);
      },
      `a log line that is not JSON: ${JSON.stringify(line)}`,
    );
    assert.ok(typeof entry === 'object' && entry !== null && !Array.isArray(entry), line);
    const fields = entry as Record<string, unknown>;
    assert.equal(typeof fields['level'], 'number', line);
    assert.equal(typeof fields['msg'], 'string', line);
    // The daemon's own pid, or a POP3 worker's.
    assert.equal(typeof fields['pid'], 'number', line);
    assert.ok(!line.includes('\r'), `no raw CR in a log line: ${JSON.stringify(line)}`);
    for (const bad of forbidden) {
      assert.ok(!(fields['msg'] as string).includes(bad), `injected message ${bad}: ${line}`);
      assert.ok(!Object.keys(fields).some((k) => k.includes(bad)), `injected field ${bad}: ${line}`);
    }
  }
}

/**
 * Resolves once every POP3 connection the daemon logged as opened has been logged as closed, so
 * that what a session does at its end (unlock, flags) is on disk.
 */
export async function waitForConnectionsClosed(d: RunningDaemon): Promise<void> {
  for (;;) {
    const opened = new Set<unknown>();
    for (const e of d.logs) {
      if (e.msg === 'connection opened') opened.add(e['cid']);
      else if (e.msg === 'connection closed') opened.delete(e['cid']);
    }
    if (opened.size === 0) return;
    const since = d.logs.length;
    await d.waitForLog((e) => e.msg === 'connection closed', { since, timeoutMs: 20_000 });
  }
}

const run = promisify(execFile);

/**
 * A self-signed EC certificate for 127.0.0.1 in `dir` (cert.pem, key.pem), made with openssl; or
 * undefined when openssl is not installed, except in CI (`CI=true`), where that throws. Any other
 * openssl failure throws everywhere.
 */
export async function selfSignedCertificate(
  dir: string,
): Promise<{ certPath: string; keyPath: string } | undefined> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  try {
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        keyPath,
        '-out',
        certPath,
      ],
      { env: { ...process.env, OPENSSL_CONF: '/dev/null' } },
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (onCI())
      throw new Error(`openssl is not installed (${installCommand('openssl')}); .ci/run must install it`, {
        cause: error,
      });
    return undefined;
  }
  return { certPath, keyPath };
}
