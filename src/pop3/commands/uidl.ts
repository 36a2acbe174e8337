import { splitArgs } from '../session.js';
import type { Command } from './types.js';

/** RFC 1939 section 7: unique-id listings, deleted messages left out. */
export const uidl: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    const [arg] = splitArgs(args, 1);
    if (arg !== undefined) {
      const [msgNo, info] = session.message(arg);
      await session.reply.ok(`${msgNo} ${info.uid}`);
      return;
    }
    const lines: string[] = [];
    for (const [msgNo, info] of session.liveMessages()) lines.push(`${msgNo} ${info.uid}`);
    await session.reply.lines('unique-id listing follows', lines);
  },
};
