// Clients that vanish in the middle of a multi-step command (STLS, a SASL exchange): found by the
// fuzzer, reproduced here one by one on the engine. A client that is gone must be let go at once
// and quietly: not kept until a timeout, not logged as an internal error.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { startServer } from '../helpers/start-server.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { skipForMissing } from '../interop/require-binary.js';
import { CapturingLogger } from '../monitor/setup.js';
import { selfSignedCertificate } from './fixture.js';

/** If the server kept the connection until loginTimeoutMs, the test's own timeout fails it first. */
const LONG = { loginTimeoutMs: 600_000 };
const QUICK = { timeout: 5_000 };

test(
  'a client that closes its side right after STLS is let go at once, not at the login timeout',
  QUICK,
  async (t) => {
    const dir = await tempDir(t);
    const files = await selfSignedCertificate(dir);
    if (files === undefined) {
      skipForMissing(t, 'openssl');
      return;
    }
    const tls = { cert: await readFile(files.certPath), key: await readFile(files.keyPath) };
    const { server, port } = await startServer(t, { tls, limits: LONG });
    const client = await RawClient.connect(port);
    t.after(() => {
      client.close();
    });
    await client.waitFor('\r\n');
    client.write('STLS\r\n');
    await client.waitFor('+OK Begin TLS negotiation\r\n');
    const closed = nextServerEvent(server, 'close', () => {
      client.socket.end();
    });
    const info = await closed;
    assert.equal(info.user, undefined);
  },
);

test(
  'a client that resets the connection during a SASL exchange is not logged as an internal error',
  QUICK,
  async (t) => {
    const log = new CapturingLogger();
    const { server, port } = await startServer(t, { logger: log, limits: LONG });
    const results: string[] = [];
    server.on('command', (c) => results.push(`${c.verb} ${c.result}`));
    const client = await RawClient.connect(port);
    await client.waitFor('\r\n');
    client.write('AUTH LOGIN\r\n');
    await client.waitFor('+ VXNlcm5hbWU6\r\n');
    await nextServerEvent(server, 'close', () => {
      client.socket.resetAndDestroy();
    });
    assert.deepEqual(
      log.entries.filter((e) => e.level === 'error'),
      [],
    );
    assert.deepEqual(results, ['AUTH gone']);
  },
);
