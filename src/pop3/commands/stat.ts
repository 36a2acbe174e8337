import { expectNoArguments } from '../arguments.js';
import type { Command } from '../command.js';
import { liveTotals, statLine } from '../listing.js';

/** RFC 1939 section 5: `+OK count octets`, deleted messages excluded. */
export const stat: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    expectNoArguments('STAT', args);
    const { count, bytes } = await liveTotals(session);
    await session.reply.ok(statLine(count, bytes));
  },
};
