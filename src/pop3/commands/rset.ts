import { expectNoArguments } from '../arguments.js';
import type { Command } from '../command.js';

/** RFC 1939 section 5: unmarks every message marked as deleted. */
export const rset: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    expectNoArguments('RSET', args);
    session.deleted.clear();
    const { count, bytes } = session.totals();
    await session.reply.ok(session.say('maildropHas', count, bytes));
  },
};
