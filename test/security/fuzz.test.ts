// The network fuzzer in short mode against the real daemon: tens of thousands of random and
// mutated POP3 lines and monitor frames, then the daemon must still be running, serve a whole
// session byte for byte, answer the monitor, have logged no error, and have lost or changed no
// mail. The seed is printed (a test diagnostic); POPLAR_FUZZ_SEED=N replays a run's traffic and
// POPLAR_FUZZ_LINES=N changes its length. The long mode is scripts/fuzz.mjs (see SECURITY.md).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import { startDaemon } from '../helpers/daemon.js';
import { monitorPort } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';
import { installCommand, onCI } from '../interop/require-binary.js';
import { assertWellFormedLog, selfSignedCertificate, waitForConnectionsClosed } from './fixture.js';
import { fuzz } from './fuzz-engine.js';
import {
  assertFullSession,
  assertMailIntact,
  assertMonitorAnswers,
  baseline,
  classifyErrors,
  FUZZ_ADMIN_TOKEN,
  FUZZ_USERS,
  prepareFuzzTarget,
} from './fuzz-target.js';

const LINES = Number(process.env['POPLAR_FUZZ_LINES'] ?? 25_000);
const SEED =
  process.env['POPLAR_FUZZ_SEED'] === undefined
    ? randomInt(2 ** 31)
    : Number(process.env['POPLAR_FUZZ_SEED']);

test(
  `the daemon survives ${LINES} fuzzed lines and still serves exactly`,
  { timeout: 120_000 },
  async (t) => {
    t.diagnostic(`fuzz seed ${SEED} (replay: POPLAR_FUZZ_SEED=${SEED})`);
    const target = await prepareFuzzTarget(await tempDir(t, 'poplar-fuzz-'), selfSignedCertificate);
    // Without openssl (never in CI: selfSignedCertificate throws there) STLS is fuzzed without a
    // certificate, and the handshake assertion below cannot be made.
    assert.ok(!onCI() || target.hasTls, 'CI fuzzes STLS with a certificate');
    if (!target.hasTls) {
      t.diagnostic(`openssl not found: STLS is fuzzed without a certificate (${installCommand('openssl')})`);
    }
    const d = await startDaemon(t, { cwd: target.cwd, args: target.args });
    const before = await baseline(target);

    const report = await fuzz({
      pop3Port: d.port,
      monitorPort: monitorPort(d.started),
      lines: LINES,
      seed: SEED,
      credentials: FUZZ_USERS,
      monitorToken: FUZZ_ADMIN_TOKEN,
      concurrency: 48,
      log: (m) => {
        t.diagnostic(m);
      },
    });
    t.diagnostic(JSON.stringify(report));
    const context = `seed ${SEED}`;
    // No time budget: every line of the name is sent (the test's timeout bounds the run).
    assert.ok(report.linesSent >= LINES, `all ${LINES} lines were sent (${context})`);
    assert.equal(report.connectFailures, 0, `every connection was accepted (${context})`);
    assert.ok(report.pop3Connections > 0 && report.monitorConnections > 0, context);
    if (target.hasTls) assert.ok(report.tlsHandshakes > 0, `some STLS handshakes completed (${context})`);

    assert.equal(d.child.exitCode, null, `the daemon is still running (${context})`);
    assert.equal(d.child.signalCode, null, context);
    await waitForConnectionsClosed(d);
    await assertMailIntact(target, before, context);
    await assertFullSession(d.port);
    await assertMonitorAnswers(monitorPort(d.started));

    // Nothing went wrong inside: no error entry (but for known issues, which are shown), a clean
    // stderr, every line JSON.
    const { unexpected, known } = classifyErrors(d.logs);
    for (const [name, count] of known) t.diagnostic(`known issue, seen ${count} times: ${name}`);
    assert.deepEqual(
      unexpected.map((e) => e['raw']),
      [],
      `no entry at level 50 or above (${context})`,
    );
    assert.equal(d.stderr(), '', context);
    assertWellFormedLog(d);
    assert.equal(await d.stop(), 0, 'a clean shutdown');
  },
);
