import { protocolError } from '../text/index.js';
import { requireSafeChannel } from '../login-policy.js';
import { prepareUserName } from '../../user.js';
import type { Command } from '../command.js';

/** Longest name USER takes; longer ones can never be valid and are refused as a syntax error. */
const MAX_USER_ARG_BYTES = 255;

/** RFC 1939 section 7. Always `+OK` for a plausible name, so USER never reveals whether a user exists. */
export const user: Command = {
  states: ['AUTHORIZATION'],
  async run(session, args) {
    requireSafeChannel(session);
    const name = args.replace(/^[ \t]+|[ \t]+$/g, '');
    if (name === '') throw protocolError('userNeedsName');
    if (Buffer.byteLength(name) > MAX_USER_ARG_BYTES) throw protocolError('userNameTooLong');
    // One spelling per name (SASLprep, RFC 6856 section 2.2): composed or decomposed, one user.
    session.pendingUser = prepareUserName(name);
    await session.reply.ok(session.say('sendPass'));
  },
};
