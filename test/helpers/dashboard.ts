import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { InitialState } from '../../src/dashboard/web/state.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { startDaemon, type RunningDaemon } from './daemon.js';
import { buildMaildir } from './maildir-builder.js';
import { tempDir } from './temp-dir.js';

/** The admin of {@link dashboardDaemon}: name and token. */
export const DASHBOARD_ADMIN = ['ops', 'dash-token-16chr'] as const;

/**
 * A daemon with users alice and bob (password pw, one message each, whose body is `body`), an
 * admins file (ops), one process unless `extra` asks for workers, and the metrics listener, with
 * the dashboard, on `metrics`.
 */
export async function dashboardDaemon(
  t: TestContext,
  metrics: string,
  extra: readonly string[] = [],
  { body = 'hello' }: { readonly body?: string } = {},
): Promise<RunningDaemon> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\nbob:{PLAIN}pw\n');
  for (const user of ['alice', 'bob'])
    await buildMaildir(join(cwd, 'mail'), user, [{ content: `Subject: for ${user}\r\n\r\n${body}\r\n` }]);
  const [admin, token] = DASHBOARD_ADMIN;
  await writeFile(join(cwd, 'admins'), `${admin}:${await hashPassword(token, 'SSHA256')}\n`, { mode: 0o600 });
  const args = ['--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0', '--monitor-port', '0'];
  const d = await startDaemon(t, {
    cwd,
    args: [...args, '--admins', 'admins', '--metrics-listen', metrics, ...extra],
  });
  t.after(() => d.stop());
  return d;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface HttpOptions {
  /** HTTP Basic credentials: name and password. */
  readonly auth?: readonly [string, string];
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Trusted CA for an https URL. */
  readonly ca?: Buffer;
}

/** One request with node:http(s), its whole answer as text. */
export function fetchText(url: string, options: HttpOptions = {}): Promise<HttpAnswer> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== undefined)
    headers['authorization'] = `Basic ${Buffer.from(options.auth.join(':')).toString('base64')}`;
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: options.method ?? 'GET',
        headers,
        ...(options.ca === undefined ? {} : { ca: options.ca, servername: 'localhost' }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The dashboard's address, from the daemon's `dashboard on` line. */
export async function dashboardUrl(daemon: RunningDaemon): Promise<string> {
  const entry = await daemon.waitForLog((e) => e.msg.startsWith('dashboard on'));
  return String(entry['url']);
}

/**
 * The dashboard's state, asked again (the sampler runs every 2 s) until `predicate` holds; rejects
 * with the last state after `timeoutMs`.
 */
export async function stateUntil(
  url: string,
  options: HttpOptions,
  predicate: (state: InitialState) => boolean,
  timeoutMs = 20_000,
): Promise<InitialState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await fetchText(new URL('/api/state', url).href, options);
    if (answer.status !== 200) throw new Error(`GET /api/state: ${String(answer.status)} ${answer.body}`);
    const state = JSON.parse(answer.body) as InitialState;
    if (predicate(state)) return state;
    if (Date.now() > deadline) throw new Error(`state never matched: ${answer.body.slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
