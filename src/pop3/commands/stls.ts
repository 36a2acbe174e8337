import { textError } from '../text/index.js';
import { expectNoArguments } from '../arguments.js';
import type { Command } from '../command.js';

/**
 * STLS (RFC 2595 section 4). The reply is written at the very moment the handshake starts, and
 * everything the client sent after the command is thrown away (the STARTTLS injection class).
 */
export const stls: Command = {
  states: ['AUTHORIZATION'],
  async run(session, args) {
    expectNoArguments('STLS', args);
    if (session.isTls) throw textError('tlsActive', []);
    if (session.engine.tls === undefined) throw textError('tlsUnavailable', []);
    await session.reply.flushed();
    const reply = `+OK ${session.say('beginTls')}\r\n`;
    session.channel.startTls(reply);
  },
};
