import { expectNoArguments } from '../arguments.js';
import type { Command } from '../command.js';

export const noop: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    expectNoArguments('NOOP', args);
    await session.reply.ok();
  },
};
