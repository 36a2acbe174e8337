import { ProtocolError } from '../../errors.js';
import type { Command } from '../command.js';

export const noop: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    if (args !== '') throw new ProtocolError('NOOP takes no arguments');
    await session.reply.ok();
  },
};
