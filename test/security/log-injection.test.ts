// Log forging: CR, LF, other control characters, JSON-breaking characters and Unicode line
// separators in user names and other echoed arguments, through POP3 commands, SASL and the
// monitor. Every line the daemon logs must stay one well-formed JSON entry, and nothing a client
// sent may become a message, a field name or a level of its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { assertWellFormedLog, monitorRequest, startSecurityDaemon } from './fixture.js';

/** Marks every injection attempt: it may appear inside a field's value, nowhere else. */
const MARK = 'FORGED';
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Strings that would end or break a log line, or a JSON document, if written as they are. */
const PAYLOADS = [
  `x\r\n{"level":60,"msg":"${MARK}-crlf","pid":1}`,
  `x\n{"level":60,"msg":"${MARK}-lf"}`,
  `x\r{"level":60,"msg":"${MARK}-cr"}`,
  `x","msg":"${MARK}-quote","level":60,"${MARK}-key":"`,
  `x\\","msg":"${MARK}-backslash`,
  `x\u2028{"msg":"${MARK}-ls"}\u2029`,
  `x\u0085{"msg":"${MARK}-nel"}`,
  `x\0{"msg":"${MARK}-nul"}`,
  `x\x1b[2J\x1b[1;1H${MARK}-ansi`,
  `x\t{"msg":"${MARK}-tab"}`,
  `x}{"msg":"${MARK}-brace"}{`,
  `x\ud800${MARK}-lone-surrogate`,
];

test('control and JSON-breaking characters sent by clients never forge a log entry', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: 'alice:{PLAIN}alice-pw-77\n',
    logLevel: 'debug',
  });
  const port = s.pop3Port;

  let wrongTokens = 0;
  for (const payload of PAYLOADS) {
    // In a command line: as it is (a line break ends the line: the rest is a command of its own),
    // and as an argument of every command that takes one.
    const client = await Pop3TestClient.connect(port);
    try {
      for (const line of [`USER ${payload}`, `PASS ${payload}`, `APOP ${payload} ${'0'.repeat(32)}`]) {
        client.write(`${line}\r\n`);
      }
      client.write(`AUTH ${payload}\r\nNOOP ${payload}\r\n${payload}\r\nQUIT\r\n`);
      await client.closed();
    } finally {
      client.close();
    }
    // In SASL, where base64 carries every byte: as user names, authorization identities,
    // passwords, and a CRAM-MD5 response.
    const sasl = await Pop3TestClient.connect(port);
    try {
      sasl.write(`AUTH PLAIN ${b64(`${payload}\0${payload}\0pw`)}\r\n`);
      sasl.write(`AUTH PLAIN ${b64(`\0${payload}\0${payload}`)}\r\n`);
      sasl.write(`AUTH LOGIN ${b64(payload)}\r\n${b64(payload)}\r\n`);
      await sasl.closed();
    } finally {
      sasl.close();
    }
    const login = await Pop3TestClient.connect(port);
    try {
      login.write(`AUTH LOGIN\r\n${b64(payload)}\r\n${b64('pw')}\r\nQUIT\r\n`);
      await login.closed();
    } finally {
      login.close();
    }
    // Through the monitor: names and paths, with the right token and with a wrong one.
    const data = Buffer.from(payload);
    const pair = Buffer.concat([data, Buffer.from([0]), data]);
    for (const [target, body] of [
      [0x00, data],
      [0x02, pair],
      [0x03, data],
      [0x04, pair],
      [0x05, data],
      [0x06, data],
    ] as const) {
      await monitorRequest(s.monitorPort, 'config', target, body);
      // Each wrong token from an address of its own: past 3 from one address, its requests wait.
      wrongTokens += 1;
      const from = `127.0.${Math.floor(wrongTokens / 250) + 1}.${(wrongTokens % 250) + 1}`;
      await monitorRequest(s.monitorPort, 'config', target, body, `${MARK}-token-000`.slice(0, 16), from);
    }
  }
  // Every connection is over: its last entry is logged.
  const opened = s.d.logs.filter((e) => e.msg === 'connection opened').length;
  await s.d.waitForLog(() => s.d.logs.filter((e) => e.msg === 'connection closed').length === opened);

  assertWellFormedLog(s.d, [MARK]);
  // The payloads did reach the log, as values: the check above looked at the right thing.
  const asValues = s.d.logs.filter((e) =>
    Object.values(e).some((v) => typeof v === 'string' && v.includes(MARK)),
  );
  assert.ok(
    asValues.some((e) => e.msg === 'login failed'),
    'failed logins log the user name as given',
  );
  // Not one of these names passes the user-name rule: the monitor refuses them before any lookup.
  assert.ok(!asValues.some((e) => e.msg === 'sessions ended'), 'the monitor acted on no such name');
  assert.ok(s.d.logs.some((e) => e.msg === 'monitor change refused'));
  for (const e of asValues) {
    assert.ok(e.level <= 40, `not a raised level: ${e.raw}`);
    assert.ok(!e.msg.includes(MARK), e.raw);
  }
  assert.ok(!s.d.logs.some((e) => e.level >= 50), 'no entry at level 50 or above');
  assert.equal(s.d.stderr(), '');
});
