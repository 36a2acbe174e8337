import { protocolError, textError, textOf } from '../text/index.js';
import { parseBase64 } from '../arguments.js';
import { SaslError, saslError } from '../sasl/types.js';
import { failLogin, finishLogin } from '../login-flow.js';
import { requireSafeChannel, usableMechanisms } from '../login-policy.js';
import type { Command } from '../command.js';

/**
 * AUTH (RFC 5034): `AUTH mechanism [initial-response]`, then `+ challenge` / client response lines
 * until the mechanism is done; `*` cancels. A bare `AUTH` lists the mechanisms (as RFC 1734 servers
 * did; old Outlook probes with it).
 */
export const auth: Command = {
  states: ['AUTHORIZATION'],
  hidesArgs: true,
  async run(session, args) {
    const usable = usableMechanisms(session);
    if (args.trim() === '') {
      await session.reply.lines(
        session.say('methodsSupported'),
        usable.map((m) => m.name),
      );
      return;
    }
    const [name = '', initialArg, extra] = args.split(' ');
    if (extra !== undefined) throw protocolError('usage', 'AUTH mechanism [initial-response]');
    const { engine } = session;
    const mechanism = engine.mechanisms.get(name.toUpperCase());
    if (mechanism === undefined || !mechanism.isAvailable(engine.authenticator)) {
      throw textError('unsupportedMechanism', [name.slice(0, 40)]);
    }
    if (mechanism.isCleartext) requireSafeChannel(session);
    session.pendingUser = undefined;
    const method = mechanism.name;
    try {
      const exchange = mechanism.begin({
        authenticator: engine.authenticator,
        checkPassword: (request) =>
          engine.authCache.authenticate(engine.authenticator, request, engine.limits),
        remoteAddress: session.remoteAddress,
        isTls: session.isTls,
        signal: session.signal,
        hostname: engine.hostname,
        decoySecret: engine.decoySecret,
        maxPasswordBytes: engine.limits.maxPasswordBytes,
      });
      const initial =
        initialArg === undefined ? undefined : initialArg === '=' ? Buffer.alloc(0) : parseBase64(initialArg);
      let step = await exchange.start(initial);
      while (step.kind === 'challenge') {
        step = await exchange.step(await challenge(session, step.data));
      }
      if (step.result.ok && step.successData !== undefined) {
        // RFC 5034 section 4: data sent with success travels as a last challenge, answered empty.
        const answer = await challenge(session, step.successData);
        if (answer.length !== 0) throw saslError('saslExpectedEmpty');
      }
      await finishLogin(session, method, step.username, step.result);
    } catch (error) {
      if (error instanceof SaslError) {
        await failLogin(session, method, undefined, textOf('authFailed', error.text));
      }
      throw error;
    }
  },
};

/** Sends `+ base64` and reads the answer; `*` cancels the exchange. */
async function challenge(session: Parameters<Command['run']>[0], data: Buffer): Promise<Buffer> {
  await session.reply.write(`+ ${data.toString('base64')}\r\n`);
  const line = await session.channel.readLine(session.engine.limits.maxSaslLineBytes);
  if (line === undefined) throw saslError('saslResponseTooLong');
  const text = line.toString('latin1');
  if (text === '*') throw saslError('saslCancelled');
  return parseBase64(text);
}
