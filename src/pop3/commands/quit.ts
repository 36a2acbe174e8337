import { RespCode } from '../../errors.js';
import { expectNoArguments } from '../arguments.js';
import type { MessageInfo } from '../../mailstore/types.js';
import type { Command } from '../command.js';
import { expiresAtQuit } from '../user-policy.js';

/**
 * RFC 1939 sections 4 and 6. In TRANSACTION, QUIT enters UPDATE: only now are deletions applied
 * (and retrieved messages marked seen). A session that ends any other way changes nothing.
 */
export const quit: Command = {
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(session, args) {
    expectNoArguments('QUIT', args);
    session.isEnding = true;
    session.closeReason = 'quit';
    if (session.state === 'AUTHORIZATION') {
      await session.reply.ok(session.say('signingOff'));
      return;
    }
    session.state = 'UPDATE';
    const messages = session.messages;
    const infoOf = (msgNo: number): MessageInfo => messages[msgNo - 1] as MessageInfo;
    // EXPIRE 0: what the session retrieved is deleted as if by DELE.
    const toDelete = expiresAtQuit(session)
      ? new Set([...session.deleted, ...session.retrieved])
      : session.deleted;
    const deleted = [...toDelete].map((n) => infoOf(n));
    const retrieved = [...session.retrieved].filter((n) => !toDelete.has(n)).map((n) => infoOf(n).uid);
    const { notDeleted } = await session.maildrop.commit({ deleted: deleted.map((m) => m.uid), retrieved });
    const failed = new Set(notDeleted);
    const { summary } = session;
    for (const info of deleted) {
      if (failed.has(info.uid)) continue;
      summary.deletedMessages += 1;
      summary.deletedBytes += info.size;
    }
    session.engine.stats.messagesDeleted += summary.deletedMessages;
    const left = messages.length - summary.deletedMessages;
    // Release the lock before answering, so a client that reconnects at once is not told [IN-USE].
    await session.releaseMaildrop();
    if (failed.size > 0) {
      await session.reply.err(session.say('notDeleted', failed.size, deleted.length), RespCode.sysTemp);
      return;
    }
    await session.reply.ok(session.say('signingOffLeft', left));
  },
};
