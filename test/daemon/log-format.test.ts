// --log-format: `text` gives one readable line per entry (the default on a terminal), `json` pino's
// JSON lines (the default when stdout is a file or a pipe). Every JSON entry names the program and
// the host; the start line carries the version.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPoplar, runToEnd, startDaemon } from '../helpers/daemon.js';
import { poplarCommand } from '../helpers/node-script.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';

const TEXT_LINE =
  /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG|FATAL) \(poplar\/\d+\): \S/;

async function demoSession(port: number): Promise<void> {
  const client = await Pop3TestClient.connect(port);
  await client.login('foo', 'bar');
  assert.match(await client.command('QUIT'), /^\+OK Poplar signing off/);
  await client.closed();
}

test('--log-format text: one line per entry, a session as connect, login, logout and close lines', async (t) => {
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { cwd, args: ['-p', '0', '--log-format', 'text'] });
  await demoSession(d.port);
  await d.waitForLog((e) => e.msg === 'connection closed');
  assert.equal(await d.stop(), 0);

  const lines = d.stdout().trimEnd().split('\n');
  for (const line of lines) assert.match(line, TEXT_LINE, 'every line is a whole entry');
  assert.match(d.started.raw, / version=\d+\.\d+\.\d+/);
  const session = d.logs.filter((e) => typeof e['cid'] === 'string');
  assert.deepEqual(
    session.map((e) => e.msg),
    ['connection opened', 'login', 'logout', 'connection closed'],
  );
  assert.equal(new Set(session.map((e) => e['cid'])).size, 1, 'one cid for the session');
  for (const entry of session) assert.equal(entry['remote'], '127.0.0.1', entry.raw);
  for (const entry of session.slice(1)) assert.equal(entry['user'], 'foo', entry.raw);
  assert.equal(session.at(-1)?.['reason'], 'quit');
});

test('JSON lines by default on a pipe, with name, hostname and (at start) the version', async (t) => {
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { cwd, args: ['-p', '0'] });
  assert.equal(await d.stop(), 0);
  for (const entry of d.logs) {
    assert.equal(entry.level > 0, true, `JSON: ${entry.raw}`);
    assert.equal(entry['name'], 'poplar');
    assert.equal(entry['hostname'], hostname());
  }
  assert.match(String(d.started['version']), /^\d+\.\d+\.\d+/);
});

test('TOML logFormat selects the format; a bad one is refused naming the file', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'poplar.toml'), 'logFormat = "text"\n');
  const d = await startDaemon(t, { cwd, args: ['-p', '0', '--config', 'poplar.toml'] });
  assert.match(d.started.raw, TEXT_LINE);
  assert.equal(await d.stop(), 0);

  await writeFile(join(cwd, 'poplar.toml'), 'logFormat = "xml"\n');
  const toml = await runPoplar(t, ['-p', '0', '--config', 'poplar.toml'], { cwd });
  assert.equal(toml.code, 2);
  assert.equal(toml.stderr, 'poplar: poplar.toml: logFormat must be text or json\n');
  const flag = await runPoplar(t, ['-p', '0', '--log-format', 'xml'], { cwd });
  assert.equal(flag.code, 2);
  assert.equal(flag.stderr, 'poplar: --log-format must be text or json\n');
});

/** Runs poplar with stdout and stderr on a terminal (util-linux `script`); resolves to what it printed. */
async function onTerminal(t: Parameters<typeof tempDir>[0], cwd: string, args: string[]): Promise<string> {
  const script = await requireBinary(t, 'script');
  if (script === undefined) return '';
  const { command, args: argv } = poplarCommand(args);
  const quoted = [command, ...argv].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  const run = await runToEnd(
    t,
    spawn(script, ['-q', '-e', '-c', quoted, '/dev/null'], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] }),
  );
  // eslint-disable-next-line no-control-regex
  return run.stdout.replace(/\x1b\[[0-9;]*m/g, '').replaceAll('\r\n', '\n');
}

test('on a terminal the default is text; --log-format json still gives JSON', async (t) => {
  const cwd = await tempDir(t);
  // A start that fails at once: its fatal entry is enough to see the format.
  const args = ['--monitor-port', '0', '-p', '0', '--users', 'missing-users'];
  const text = await onTerminal(t, cwd, args);
  if (text === '') return;
  assert.match(text, /^\[[^\]]+\] FATAL \(poplar\/\d+\): poplar could not start err=/m);
  assert.doesNotMatch(text, /"level":/);
  const json = await onTerminal(t, cwd, [...args, '--log-format', 'json']);
  assert.match(json, /^\{"level":60,/m);
});
