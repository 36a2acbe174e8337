// The metrics listener under load: scrapes share one rendering and reuse it for a moment, slow and
// greedy clients lose their place, and /healthz says whether the server serves.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { serveMetrics, type MetricsHttpOptions } from '../../src/metrics/http.js';
import { createBuildInfoRegistry } from '../../src/metrics/registry.js';

/** A registry whose renderings the test counts and, when it holds them, releases. */
class FakeRegistry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  calls = 0;
  isHeld = false;
  failNext = false;
  readonly #held: (() => void)[] = [];

  metrics(): Promise<string> {
    this.calls += 1;
    const n = this.calls;
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('worker gone'));
    }
    if (!this.isHeld) return Promise.resolve(`rendering ${n}\n`);
    return new Promise((resolve) =>
      this.#held.push(() => {
        resolve(`rendering ${n}\n`);
      }),
    );
  }

  release(): void {
    for (const r of this.#held.splice(0)) r();
  }
}

async function start(
  t: TestContext,
  registry: FakeRegistry,
  options: Partial<MetricsHttpOptions> = {},
): Promise<{ server: Server; port: number }> {
  const { server, address } = await serveMetrics(registry, { host: '127.0.0.1', port: 0, ...options });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  );
  return { server, port: address.port };
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${String(port)}${path}`);
  return { status: response.status, text: await response.text() };
}

test('scrapes that arrive during a rendering wait for it: one rendering for all', async (t) => {
  const registry = new FakeRegistry();
  registry.isHeld = true;
  const { server, port } = await start(t, registry, { cacheMs: 0 });
  let requests = 0;
  const allArrived = new Promise<void>((resolve) => {
    server.on('request', () => {
      if (++requests === 5) resolve();
    });
  });
  const scrapes = Array.from({ length: 5 }, () => get(port, '/metrics'));
  await allArrived;
  registry.release();
  const answers = await Promise.all(scrapes);
  assert.deepEqual(
    answers,
    answers.map(() => ({ status: 200, text: 'rendering 1\n' })),
  );
  assert.equal(registry.calls, 1);
  // Once it is done, the next scrape renders again (no reuse with cacheMs 0).
  registry.isHeld = false;
  assert.deepEqual(await get(port, '/metrics'), { status: 200, text: 'rendering 2\n' });
});

test('a rendering is reused for cacheMs; a failed one is not', async (t) => {
  const registry = new FakeRegistry();
  const { port } = await start(t, registry, { cacheMs: 600_000 });
  registry.failNext = true;
  assert.equal((await get(port, '/metrics')).status, 500);
  assert.deepEqual(await get(port, '/metrics'), { status: 200, text: 'rendering 2\n' });
  assert.deepEqual(await get(port, '/metrics'), { status: 200, text: 'rendering 2\n' });
  assert.deepEqual(await get(port, '/metrics?x=1'), { status: 200, text: 'rendering 2\n' });
  assert.equal(registry.calls, 2);
});

test('GET /healthz: 200 ok while healthy, 503 when the check fails or throws', async (t) => {
  let health: boolean | Error = true;
  const registry = new FakeRegistry();
  const { port } = await start(t, registry, {
    isHealthy: () => (health instanceof Error ? Promise.reject(health) : Promise.resolve(health)),
  });
  assert.deepEqual(await get(port, '/healthz'), { status: 200, text: 'ok\n' });
  health = false;
  assert.deepEqual(await get(port, '/healthz'), { status: 503, text: 'unavailable\n' });
  health = new Error('worker 123 did not answer');
  assert.deepEqual(await get(port, '/healthz'), { status: 503, text: 'unavailable\n' });
  health = true;
  assert.deepEqual(await get(port, '/healthz'), { status: 200, text: 'ok\n' });
  assert.equal(registry.calls, 0, 'a health check renders no metrics');
  // Without a check: 200 as long as the process answers.
  const plain = await start(t, new FakeRegistry());
  assert.deepEqual(await get(plain.port, '/healthz'), { status: 200, text: 'ok\n' });
  for (const path of ['/healthz/', '/health', '/']) assert.equal((await get(port, path)).status, 404, path);
});

test('a client that never finishes its headers is closed after headersTimeoutMs', async (t) => {
  const { port } = await start(t, new FakeRegistry(), { headersTimeoutMs: 200 });
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
  socket.resume();
  await once(socket, 'close');
});

test('connections beyond maxConnections are closed at once; the others are served', async (t) => {
  const registry = new FakeRegistry();
  const { port } = await start(t, registry, { maxConnections: 2 });
  const idle = [connect({ host: '127.0.0.1', port }), connect({ host: '127.0.0.1', port })];
  t.after(() => {
    for (const s of idle) s.destroy();
  });
  for (const s of idle) s.on('error', () => {});
  await Promise.all(idle.map((s) => once(s, 'connect')));
  // The server counts a connection once it has accepted it: wait until a third one is turned away.
  for (;;) {
    const extra = connect({ host: '127.0.0.1', port });
    extra.on('error', () => {});
    extra.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let received = '';
    extra.on('data', (chunk: Buffer) => (received += chunk.toString()));
    // Not once(): it would reject on the reset that turning the connection away may cause.
    await new Promise((resolve) => extra.once('close', resolve));
    if (received === '') break;
  }
  for (const s of idle) s.destroy();
  // Their places come back once the server sees them go.
  for (;;) {
    const answer = await get(port, '/metrics').catch(() => undefined);
    if (answer?.status === 200) break;
  }
});

test('poplar_build_info: 1, with the version and the Node.js version as labels', async () => {
  const text = await createBuildInfoRegistry('1.2.3', 'v20.0.0').metrics();
  assert.match(text, /^# TYPE poplar_build_info gauge$/m);
  assert.match(text, /^poplar_build_info\{version="1\.2\.3",node="v20\.0\.0"\} 1$/m);
  assert.match(await createBuildInfoRegistry('0.1.0').metrics(), new RegExp(`node="${process.version}"`));
});
