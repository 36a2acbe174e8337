import { ProtocolError } from '../../errors.js';
import { splitArgs } from '../session.js';
import { topOfMessage } from '../top.js';
import type { Command } from './types.js';

/** RFC 1939 section 7: the header, the blank line and the first `n` lines of the body. */
export const top: Command = {
  states: ['TRANSACTION'],
  async run(session, args) {
    const [msgArg, linesArg] = splitArgs(args, 2);
    if (linesArg === undefined) throw new ProtocolError('usage: TOP msg n');
    const [, info] = session.message(msgArg);
    const bodyLines = session.count(linesArg, 'line count');
    const source = await session.maildrop.read(info.uid, {
      signal: session.signal,
      chunkBytes: session.engine.limits.transferChunkBytes,
    });
    try {
      await session.reply.body('top of message follows', topOfMessage(source, bodyLines));
    } finally {
      source.destroy();
    }
    session.summary.topCount += 1;
  },
};
