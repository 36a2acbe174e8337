import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { Maildrop, MailStore } from '../../src/mailstore/types.js';
import { dialog, Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent } from '../helpers/raw-client.js';
import { embed, startServer } from '../helpers/start-server.js';

// A 50 MiB message, made up chunk by chunk as the server pulls it and never held whole: a header,
// then 800 chunks of 1024 numbered 64-byte lines (no line starts with a dot, so no stuffing).
const HEADER = Buffer.from('Subject: big\r\n\r\n');
const LINES_PER_CHUNK = 1024;
const CHUNK_COUNT = 800;
const CHUNK_BYTES = LINES_PER_CHUNK * 64;
const MESSAGE_BYTES = HEADER.length + CHUNK_COUNT * CHUNK_BYTES; // 52 428 816
const FILLER = 'x'.repeat(51);

function chunkAt(index: number): Buffer {
  let text = '';
  for (let i = 0; i < LINES_PER_CHUNK; i++) {
    text += `${String(index * LINES_PER_CHUNK + i).padStart(10, '0')} ${FILLER}\r\n`;
  }
  return Buffer.from(text, 'latin1');
}

/** Yields the message chunk by chunk and counts what the server has pulled so far. */
class GeneratedMessage extends Readable {
  pulled = 0;
  #next = -1;

  override _read(): void {
    if (this.#next === CHUNK_COUNT) {
      this.push(null);
      return;
    }
    const chunk = this.#next === -1 ? HEADER : chunkAt(this.#next);
    this.#next += 1;
    this.pulled += chunk.length;
    this.push(chunk);
  }
}

/** One user, one generated message; every read() is a new stream, kept for the test to inspect. */
function generatedStore(): { store: MailStore; sources: GeneratedMessage[] } {
  const sources: GeneratedMessage[] = [];
  const drop: Maildrop = {
    messages: [{ uid: 'big', size: MESSAGE_BYTES }],
    read() {
      const source = new GeneratedMessage();
      sources.push(source);
      return Promise.resolve(source);
    },
    commit: () => Promise.resolve({ notDeleted: [] }),
    close: () => Promise.resolve(),
  };
  return { store: { open: () => Promise.resolve(drop) }, sources };
}

test('a client that stops reading holds back the store; when it reads again, all arrives intact', async (t) => {
  const { store, sources } = generatedStore();
  const { server, port: barrierPort } = await startServer(t, { store });
  const { port, sockets } = await embed(t, server);
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.login('alice', 'pw'), `+OK alice has 1 message (${MESSAGE_BYTES} octets)`);

  // From here on the test reads the socket itself, hashing as it goes.
  const socket = client.socket;
  socket.pause();
  socket.removeAllListeners('data');
  socket.write('RETR 1\r\nQUIT\r\n');

  // Wait, one full round trip on another connection at a time, until the server has been blocked
  // on the socket, pulling nothing more from the store, for ten round trips in a row.
  const serverSocket = sockets[0];
  assert.ok(serverSocket !== undefined);
  const pulled = (): number => sources[0]?.pulled ?? 0;
  let stalledAt = -1;
  for (let i = 0, steady = 0; steady < 10; i++) {
    assert.ok(i < 2000, `the server never stopped pulling (${pulled()} bytes)`);
    await dialog(barrierPort, ['CAPA']);
    const now = pulled();
    steady = now > 0 && now === stalledAt && serverSocket.writableNeedDrain ? steady + 1 : 0;
    stalledAt = now;
  }
  // Bounded by the socket buffers (kernel and user space) and a few chunks, far below the message.
  assert.ok(stalledAt < 16 * 1024 * 1024, `pulled ${stalledAt} bytes of ${MESSAGE_BYTES}`);
  t.diagnostic(`pulled ${stalledAt} of ${MESSAGE_BYTES} bytes while the client was not reading`);

  const hash = createHash('sha256');
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    received += chunk.length;
  });
  const closed = once(socket, 'close');
  socket.resume();
  await closed;

  const expected = createHash('sha256');
  const status = `+OK ${MESSAGE_BYTES} octets\r\n`;
  const goodbye = '.\r\n+OK Poplar signing off (1 message left)\r\n';
  expected.update(status).update(HEADER);
  for (let i = 0; i < CHUNK_COUNT; i++) expected.update(chunkAt(i));
  expected.update(goodbye);
  assert.equal(received, status.length + MESSAGE_BYTES + goodbye.length);
  assert.equal(hash.digest('hex'), expected.digest('hex'));
  assert.equal(pulled(), MESSAGE_BYTES);
  assert.equal(sources.length, 1);
});

test('TOP of a huge message pulls only its head and releases the stream', async (t) => {
  const { store, sources } = generatedStore();
  const { server, port } = await startServer(t, { store });
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'TOP 1 2', 'TOP 1 0']);
  assert.deepEqual(replies.slice(3), [
    '+OK top of message follows\nSubject: big\n\n0000000000 ' + FILLER + '\n0000000001 ' + FILLER,
    '+OK top of message follows\nSubject: big\n',
  ]);
  assert.equal(sources.length, 2);
  for (const source of sources) {
    assert.ok(source.pulled <= HEADER.length + 2 * CHUNK_BYTES, `pulled ${source.pulled}`);
    assert.equal(source.destroyed, true);
  }
  assert.equal(server.stats.messagesRetrieved, 0);
});

test('a client that disconnects during a large RETR stops the transfer and releases the stream', async (t) => {
  const { store, sources } = generatedStore();
  const { server, port } = await startServer(t, { store });
  const client = await Pop3TestClient.connect(port);
  await client.login('alice', 'pw');
  client.send('RETR 1');
  assert.equal(await client.readLine(), `+OK ${MESSAGE_BYTES} octets`);
  client.socket.pause(); // so the server cannot have sent it all before the client goes
  const closed = await nextServerEvent(server, 'close', () => {
    client.close();
  });
  assert.equal(closed.summary.retrievedMessages, 0);
  const source = sources[0];
  assert.ok(source !== undefined);
  assert.equal(source.destroyed, true);
  assert.ok(source.pulled < MESSAGE_BYTES, `pulled ${source.pulled}`);
});
