import { Pop3Error } from '../../errors.js';
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
    if (session.isTls) throw new Pop3Error('command not permitted when TLS is active');
    if (session.engine.tls === undefined) throw new Pop3Error('TLS is not available on this server');
    await session.reply.flushed();
    session.channel.startTls('+OK Begin TLS negotiation\r\n');
  },
};
