import { replyListing } from '../listing.js';
import type { Command } from '../command.js';

/** RFC 1939 section 5: scan listings; deleted messages are left out but keep their numbers. */
export const list: Command = {
  states: ['TRANSACTION'],
  run: (session, args) =>
    replyListing(
      session,
      args,
      (msgNo, info) => `${msgNo} ${info.size}`,
      ({ count, bytes }) => session.say('scanListing', count, bytes),
    ),
};
