import { protocolError } from '../text/index.js';
import { parseLineCount, parseMsgNo, splitArgs } from '../arguments.js';
import { readMessage } from '../session.js';
import { topOfMessage } from '../message-top.js';
import type { Command } from '../command.js';
import { checkDownload, countDownload, counted } from '../user-policy.js';

/** RFC 1939 section 7: the header, the blank line and the first `n` lines of the body. */
export const top: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    const [msgArg, linesArg] = splitArgs(args, 2);
    if (linesArg === undefined) throw protocolError('usage', 'TOP msg n');
    const info = session.liveMessage(parseMsgNo(msgArg));
    const bodyLines = parseLineCount(linesArg);
    checkDownload(session);
    const content = await readMessage(session, info.uid);
    try {
      const chunks = Buffer.isBuffer(content) ? [content] : content;
      await session.reply.body(
        session.say('topFollows'),
        counted(topOfMessage(chunks, bodyLines), (octets) => {
          countDownload(session, octets);
        }),
        info.isVerbatim === true,
      );
    } finally {
      if (!Buffer.isBuffer(content)) content.destroy();
    }
    session.summary.topCount += 1;
  },
};
