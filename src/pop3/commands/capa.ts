import { expectNoArguments } from '../arguments.js';
import type { Session } from '../session.js';
import { usableMechanisms } from '../login-policy.js';
import type { Command } from '../command.js';
import { policyCapabilities } from '../user-policy.js';

/**
 * RFC 2449 section 5: only what works on this connection now. USER, STLS and SASL belong to the
 * AUTHORIZATION state; USER and the cleartext mechanisms are left out where the policy refuses them.
 */
export function capabilities(session: Session): string[] {
  const caps = ['TOP', 'UIDL'];
  if (session.state === 'AUTHORIZATION') {
    if (session.mayLogInCleartext) caps.push('USER');
    if (session.engine.tls !== undefined && !session.isTls) caps.push('STLS');
    const sasl = usableMechanisms(session).map((m) => m.name);
    if (sasl.length > 0) caps.push(`SASL ${sasl.join(' ')}`);
  }
  caps.push(...policyCapabilities(session));
  // RFC 6856 sections 2 and 3: UTF8 and LANG in both states; UTF8's USER argument says UTF-8 names
  // and passwords work.
  caps.push(
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'PIPELINING',
    'UTF8 USER',
    'LANG',
    `IMPLEMENTATION ${session.engine.implementation}`,
  );
  return caps;
}

export const capa: Command = {
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(session, args) {
    expectNoArguments('CAPA', args);
    await session.reply.lines(session.say('capabilities'), capabilities(session));
  },
};
