import { ProtocolError } from '../../errors.js';
import type { Session } from '../session.js';
import type { Command } from './types.js';

/** RFC 2449 section 5: only what works. USER is offered only while it can be used. */
export function capabilities(session: Session): string[] {
  const caps = ['TOP', 'UIDL'];
  if (session.state === 'AUTHORIZATION') caps.push('USER');
  caps.push('RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', `IMPLEMENTATION ${session.engine.implementation}`);
  return caps;
}

export const capa: Command = {
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(session, args) {
    if (args !== '') throw new ProtocolError('CAPA takes no arguments');
    await session.reply.lines('Capability list follows', capabilities(session));
  },
};
