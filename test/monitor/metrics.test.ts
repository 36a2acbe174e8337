// GET /metrics end to end: the Prometheus text after a scripted POP3 session, equal to what the
// monitor reports for the same counters, with closed label sets and nothing personal in it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GetTarget } from '../../src/monitor/protocol/messages.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent } from '../helpers/raw-client.js';
import { hex, PASSWORDS, rawExchange, startMonitorFixture, type MonitorFixture } from './setup.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text format 0.0.4: `name{a="x",b="y"} value [timestamp]`; comments and blank lines skipped. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    assert.ok(m !== null, `not a sample line: ${JSON.stringify(line)}`);
    const [, name = '', labelText = '', value = ''] = m;
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let rest = labelText;
    while (rest !== '') {
      labelRe.lastIndex = 0;
      const l = labelRe.exec(rest);
      assert.ok(l !== null, `bad labels in ${JSON.stringify(line)}`);
      const [whole, key = '', raw = ''] = l;
      labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(whole.length);
    }
    // Special values as Go's ParseFloat (Prometheus' parser) takes them: any case (prom-client writes `Nan`).
    const isNaN = /^nan$/i.test(value);
    const number = isNaN
      ? NaN
      : /^[+-]?inf$/i.test(value)
        ? value.startsWith('-')
          ? -Infinity
          : Infinity
        : Number(value);
    assert.ok(isNaN || !Number.isNaN(number), `bad value in ${JSON.stringify(line)}`);
    samples.push({ name, labels, value: number });
  }
  return samples;
}

/** The one sample with this name whose labels include `labels`; fails if there is not exactly one. */
function one(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return (found[0] as Sample).value;
}

async function scrape(
  f: MonitorFixture,
  path = '/metrics',
): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(`http://127.0.0.1:${String(f.metricsPort)}${path}`);
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    text: await response.text(),
  };
}

const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';

test('after a scripted session the metrics equal the monitor counters and the session', async (t) => {
  const f = await startMonitorFixture(t, { metrics: true });
  const client = await Pop3TestClient.connect(f.pop3Port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS wrong password'), BAD_LOGIN);
  await client.login('alice', PASSWORDS.alice);

  const during = parseMetrics((await scrape(f)).text);
  assert.equal(one(during, 'pop3_connections'), 1);
  assert.equal(one(during, 'pop3_sessions'), 1);

  assert.equal((await client.multi('RETR 1')).status, '+OK 23 octets');
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.equal(await client.command('XYZZY alice 127.0.0.1'), '-ERR unknown command XYZZY');
  assert.equal(await client.command('12345'), '-ERR invalid command');
  const closed = nextServerEvent(f.pop3, 'close');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  await client.closed();
  await closed;

  const { status, type, text } = await scrape(f);
  assert.equal(status, 200);
  assert.ok(type.startsWith('text/plain; version=0.0.4'), type);
  const samples = parseMetrics(text);

  // The same source as the monitor: equal to its GETs, and to the session by hand.
  const pairs: [string, Record<string, string>, GetTarget, number][] = [
    ['pop3_connections_total', {}, 'historicConnections', 1],
    ['pop3_connections', {}, 'concurrentConnections', 0],
    ['pop3_sessions', {}, 'authenticatedSessions', 0],
    ['pop3_bytes_sent_total', {}, 'transferredBytes64', client.socket.bytesRead],
    ['pop3_bytes_received_total', {}, 'receivedBytes', client.socket.bytesWritten],
    ['pop3_messages_retrieved_total', {}, 'messagesRetrieved', 1],
    ['pop3_messages_deleted_total', {}, 'messagesDeleted', 1],
    ['pop3_logins_total', { method: 'USER', result: 'ok' }, 'loginsSucceeded', 1],
    ['pop3_logins_total', { method: 'USER', result: 'failed' }, 'loginsFailed', 1],
  ];
  for (const [name, labels, target, expected] of pairs) {
    const value = one(samples, name, labels);
    assert.equal(value, expected, `${name} by hand`);
    assert.equal(BigInt(value), await f.get(target), `${name} equals GET ${target}`);
  }
  assert.equal(one(samples, 'pop3_connections_refused_total'), 0);

  // Commands: closed label sets; the unknown verb is "other", a non-word "none".
  const commands = samples.filter((s) => s.name === 'pop3_commands_total');
  const byLabel = Object.fromEntries(
    commands.map((s) => [`${s.labels['command']}/${s.labels['result']}`, s.value]),
  );
  assert.deepEqual(byLabel, {
    'USER/ok': 2,
    'PASS/err': 1,
    'PASS/ok': 1,
    'RETR/ok': 1,
    'DELE/ok': 1,
    'other/protocol': 1,
    'none/protocol': 1,
    'QUIT/ok': 1,
  });
  assert.equal(one(samples, 'pop3_command_duration_seconds_count', { command: 'RETR' }), 1);
  assert.equal(one(samples, 'pop3_command_duration_seconds_count', { command: 'USER' }), 2);
  assert.equal(one(samples, 'pop3_command_duration_seconds_count', { command: 'other' }), 1);
  assert.equal(
    one(samples, 'pop3_command_duration_seconds_bucket', { command: 'RETR', le: '+Inf' }),
    1,
    'the +Inf bucket holds every observation',
  );
  const total = samples
    .filter((s) => s.name === 'pop3_command_duration_seconds_count')
    .reduce((sum, s) => sum + s.value, 0);
  assert.equal(total, 9, 'USER, PASS, USER, PASS, RETR, DELE, XYZZY, 12345, QUIT');
  assert.ok(one(samples, 'pop3_command_duration_seconds_sum', { command: 'QUIT' }) >= 0);

  // Default process metrics.
  assert.ok(one(samples, 'process_cpu_user_seconds_total') >= 0);
  assert.ok(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));

  // Nothing personal or client-chosen anywhere: not in label values, not in the text at all.
  for (const word of ['alice', '127.0.0.1', 'XYZZY', 'xyzzy', PASSWORDS.alice, 'wrong password']) {
    assert.ok(!text.includes(word), `${word} appears in the metrics`);
  }
  for (const s of samples) {
    for (const value of Object.values(s.labels)) assert.match(value, /^[A-Za-z0-9_.+-]*$/, `${s.name} label`);
  }
});

test('monitor_requests_total counts requests by type and status', async (t) => {
  const f = await startMonitorFixture(t, { metrics: true });
  const ROOT_HEX = '31323334353637383961626364656631';
  assert.equal(await f.get('historicConnections'), 0n);
  assert.equal((await f.get('uptimeSeconds')) >= 0n, true);
  assert.equal(
    (await f.request('get', 'concurrentConnections', '', 'not-the-token-00')).status,
    'authFailed',
  );
  assert.equal(await f.config('chunkSize', '512'), 'ok');
  assert.equal(await f.config('chunkSize', '100'), 'badData');
  assert.deepEqual((await rawExchange(f.monitorPort, Buffer.from('GET /'))).received, hex('01 0001 00'));
  assert.deepEqual((await rawExchange(f.monitorPort, hex(`01 ${ROOT_HEX} 07`))).received, hex('02 0001 00'));

  const samples = parseMetrics((await scrape(f)).text);
  const requests = samples.filter((s) => s.name === 'monitor_requests_total');
  const byLabel = Object.fromEntries(
    requests.map((s) => [`${s.labels['type']}/${s.labels['status']}`, s.value]),
  );
  assert.deepEqual(byLabel, {
    'get/ok': 2,
    'get/authFailed': 1,
    'config/ok': 1,
    'config/badData': 1,
    'none/badVersion': 1,
    'none/badType': 1,
  });
  // Monitor requests are not POP3 connections.
  assert.equal(one(samples, 'pop3_connections_total'), 0);
});

test('metrics are read at scrape time; any other path or method is 404', async (t) => {
  const f = await startMonitorFixture(t, { metrics: true });
  const before = parseMetrics((await scrape(f)).text);
  assert.equal(one(before, 'pop3_connections_total'), 0);
  assert.equal(one(before, 'pop3_connections'), 0);
  const client = await Pop3TestClient.connect(f.pop3Port);
  t.after(() => {
    client.close();
  });
  const withQuery = await scrape(f, '/metrics?name=x');
  assert.equal(withQuery.status, 200);
  const after = parseMetrics(withQuery.text);
  assert.equal(one(after, 'pop3_connections_total'), 1);
  assert.equal(one(after, 'pop3_connections'), 1);

  for (const path of ['/', '/metrics/', '/metricsx', '/Metrics', '/favicon.ico', '/metrics/../x']) {
    const response = await scrape(f, path);
    assert.equal(response.status, 404, path);
    assert.ok(!response.text.includes('pop3_'), path);
  }
  const post = await fetch(`http://127.0.0.1:${String(f.metricsPort)}/metrics`, {
    method: 'POST',
    body: 'x',
  });
  assert.equal(post.status, 404);
  await post.text();
});
