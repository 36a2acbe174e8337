import { protocolError } from '../text/index.js';
import { parseMsgNo, splitArgs } from '../arguments.js';
import type { Command } from '../command.js';

/** RFC 1939 section 5: only marks the message; it is removed in the UPDATE state after QUIT. */
export const dele: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    const [arg, extra] = splitArgs(args, 2);
    if (extra !== undefined) throw protocolError('takesOneMessageNumber', 'DELE');
    const msgNo = parseMsgNo(arg);
    session.liveMessage(msgNo); // refuses a number out of range or already deleted
    session.deleted.add(msgNo);
    await session.reply.ok(session.say('deleted', msgNo));
  },
};
