import { splitArgs } from '../session.js';
import type { Command } from './types.js';

/** RFC 1939 section 5: scan listings; deleted messages are left out but keep their numbers. */
export const list: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    const [arg] = splitArgs(args, 1);
    if (arg !== undefined) {
      const [msgNo, info] = session.message(arg);
      await session.reply.ok(`${msgNo} ${info.size}`);
      return;
    }
    const lines: string[] = [];
    let bytes = 0;
    for (const [msgNo, info] of session.liveMessages()) {
      lines.push(`${msgNo} ${info.size}`);
      bytes += info.size;
    }
    await session.reply.lines(`${lines.length} messages (${bytes} octets)`, lines);
  },
};
