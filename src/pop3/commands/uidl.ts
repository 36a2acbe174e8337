import { replyListing } from '../listing.js';
import type { Command } from '../command.js';

/** RFC 1939 section 7: unique-id listings, deleted messages left out. */
export const uidl: Command = {
  states: ['TRANSACTION'],
  run: (session, args) =>
    replyListing(session, args, (msgNo, info) => `${msgNo} ${info.uid}`, session.say('uidListing')),
};
