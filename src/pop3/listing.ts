import type { MessageInfo } from '../mailstore/types.js';
import { parseMsgNo, splitArgs } from './arguments.js';
import type { Session } from './session.js';

/**
 * LIST and UIDL share one shape (RFC 1939 sections 5 and 7): with a message number, one `+OK`
 * line for it; without, a multi-line listing of every message not marked deleted, numbers kept.
 */
export async function replyListing(
  session: Session,
  args: string,
  entry: (msgNo: number, info: MessageInfo) => string,
  heading: (lines: readonly string[], octets: number) => string,
): Promise<void> {
  const [arg] = splitArgs(args, 1);
  if (arg !== undefined) {
    const msgNo = parseMsgNo(arg);
    await session.reply.ok(entry(msgNo, session.liveMessage(msgNo)));
    return;
  }
  const lines: string[] = [];
  let octets = 0;
  for (const [msgNo, info] of session.liveMessages()) {
    lines.push(entry(msgNo, info));
    octets += info.size;
  }
  await session.reply.lines(heading(lines, octets), lines);
}
