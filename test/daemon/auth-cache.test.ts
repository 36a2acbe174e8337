// SIGHUP empties the authentication cache of every process that serves POP3 (the daemon alone, or
// each worker), as /metrics shows: pop3_auth_cache_entries is 0 after it.
import assert from 'node:assert/strict';
import { pbkdf2Sync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };

/** The cache's figures from the daemon's /metrics. */
async function metrics(d: RunningDaemon): Promise<{ hits: number; entries: number }> {
  const listening = await d.waitForLog((e) => e.msg === 'metrics listening');
  const body = await new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port: listening['port'] as number, path: '/metrics' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        resolve(text);
      });
    }).on('error', reject);
  });
  const figure = (name: string): number => {
    const line = body.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line !== undefined, `${name} is not in /metrics`);
    return Number(line.slice(name.length + 1));
  };
  return { hits: figure('pop3_auth_cache_hits_total'), entries: figure('pop3_auth_cache_entries') };
}

async function logIn(d: RunningDaemon): Promise<void> {
  const client = await Pop3TestClient.connect(d.port);
  try {
    assert.match(await client.tryLogin('alice', 'pw'), /^\+OK/);
  } finally {
    client.close();
  }
}

for (const workers of ['1', '2']) {
  test(`--workers ${workers}: SIGHUP empties the authentication cache`, LIMIT, async (t) => {
    const cwd = await tempDir(t);
    const key = pbkdf2Sync('pw', 'saltsalt', 1000, 20, 'sha1').toString('hex');
    await writeFile(join(cwd, 'users'), `alice:{PBKDF2}$1$saltsalt$1000$${key}\n`);
    await mkdir(join(cwd, 'mail'));
    const d = await startDaemon(t, {
      cwd,
      args: [
        '--workers',
        workers,
        '--users',
        'users',
        '-m',
        'mail',
        '--listen',
        '127.0.0.1',
        '-p',
        '0',
        '--no-monitor',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
    });
    for (let i = 0; i < 4; i += 1) await logIn(d);
    const since = d.logs.length;
    d.child.kill('SIGHUP');
    await d.waitForLog((e) => e.msg.startsWith('configuration reloaded'), { since });
    // One scrape: /metrics reuses an answer for a second. Hits show that entries were made.
    const { hits, entries } = await metrics(d);
    assert.ok(hits >= 4 - Number(workers), `repeat logins hit (${hits})`);
    assert.equal(entries, 0);
  });
}
