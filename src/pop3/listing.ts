import { setImmediate as nextTurn } from 'node:timers/promises';
import type { MessageInfo } from '../mailstore/types.js';
import { parseMsgNo, splitArgs } from './arguments.js';
import { LISTING_BATCH_LINES } from './reply.js';
import type { Session } from './session.js';

/** Count and total size of the messages not marked deleted. */
export interface Totals {
  readonly count: number;
  readonly bytes: number;
}

/**
 * LIST and UIDL share one shape (RFC 1939 sections 5 and 7): with a message number, one `+OK`
 * line for it; without, a multi-line listing of every message not marked deleted, numbers kept.
 * A long listing is built and sent in batches with turns of the event loop between them
 * (`ReplyWriter.listing`), so a maildrop of 100,000 messages does not hold up other sessions.
 */
export async function replyListing(
  session: Session,
  args: string,
  entry: (msgNo: number, info: MessageInfo) => string,
  heading: string | ((totals: Totals) => string),
): Promise<void> {
  const [arg] = splitArgs(args, 1);
  if (arg !== undefined) {
    const msgNo = parseMsgNo(arg);
    await session.reply.ok(entry(msgNo, session.liveMessage(msgNo)));
    return;
  }
  const first = typeof heading === 'string' ? heading : heading(await liveTotals(session));
  await session.reply.listing(first, entries(session, entry));
}

function* entries(session: Session, entry: (msgNo: number, info: MessageInfo) => string): Generator<string> {
  for (const [msgNo, info] of session.liveMessages()) yield entry(msgNo, info);
}

/** STAT's answer (RFC 1939 section 5): the count and the size, a protocol line, never translated. */
export const statLine = (count: number, bytes: number): string => `${count} ${bytes}`;

/** {@link Session.totals}, with a turn of the event loop every {@link LISTING_BATCH_LINES} messages. */
export async function liveTotals(session: Session): Promise<Totals> {
  let count = 0;
  let bytes = 0;
  for (const [, info] of session.liveMessages()) {
    count += 1;
    bytes += info.size;
    if (count % LISTING_BATCH_LINES === 0) await nextTurn();
  }
  return { count, bytes };
}
