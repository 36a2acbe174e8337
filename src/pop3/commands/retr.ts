import { protocolError } from '../text/index.js';
import { parseMsgNo, splitArgs } from '../arguments.js';
import { readMessage } from '../session.js';
import type { Command } from '../command.js';
import { checkDownload, countDownload } from '../user-policy.js';

/** RFC 1939 section 5: the whole message, streamed from the store, byte-stuffed. */
export const retr: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    const [arg, extra] = splitArgs(args, 2);
    if (extra !== undefined) throw protocolError('takesOneMessageNumber', 'RETR');
    const msgNo = parseMsgNo(arg);
    const info = session.liveMessage(msgNo);
    checkDownload(session);
    const content = await readMessage(session, info.uid);
    try {
      await session.reply.body(session.say('octets', info.size), content, info.isVerbatim === true);
    } finally {
      if (!Buffer.isBuffer(content)) content.destroy();
    }
    countDownload(session, info.size);
    session.retrieved.add(msgNo);
    session.summary.retrievedMessages += 1;
    session.summary.retrievedBytes += info.size;
    session.engine.stats.messagesRetrieved += 1;
  },
};
