import { expectNoArguments } from '../arguments.js';
import type { Command } from '../command.js';

/**
 * UTF8 (RFC 6856 section 2): enters UTF-8 mode, in which user names and passwords may be UTF-8
 * (CAPA says `UTF8 USER`). Poplar reads every command line as UTF-8 in any mode (clients send
 * UTF-8 names without asking first) and sends messages as stored, so the mode changes nothing on
 * the wire: it is recorded on the session, for the logs. The RFC allows the command in the
 * AUTHORIZATION state only; Outlook sends it after PASS, so it is answered `+OK` in TRANSACTION
 * too, as a no-op, instead of a protocol error that would count towards `maxProtocolErrors`.
 */
export const utf8: Command = {
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(session, args) {
    expectNoArguments('UTF8', args);
    const wasUtf8 = session.isUtf8;
    session.isUtf8 = true;
    if (session.state === 'TRANSACTION') {
      await session.reply.ok(session.say('utf8AfterLogin'));
      return;
    }
    await session.reply.ok(session.say(wasUtf8 ? 'utf8Again' : 'utf8Enabled'));
  },
};
