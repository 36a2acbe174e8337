import { protocolError, textError } from '../text/index.js';
import { failLogin, finishLogin } from '../login-flow.js';
import { passwordTooLong } from '../sasl/plain.js';
import { requireSafeChannel } from '../login-policy.js';
import type { Command } from '../command.js';

/** RFC 1939 section 7. The whole rest of the line is the password, spaces included. */
export const pass: Command = {
  states: ['AUTHORIZATION'],
  hidesArgs: true,
  async run(session, args) {
    requireSafeChannel(session);
    const username = session.pendingUser;
    if (username === undefined) throw textError('sendUserFirst', []);
    session.pendingUser = undefined;
    if (args === '') throw protocolError('passNeedsPassword');
    // Refused unhashed, for every name alike: SHA-crypt's cost grows with the password's length.
    const tooLong = passwordTooLong(args, session.engine.limits.maxPasswordBytes);
    if (tooLong !== undefined) return failLogin(session, 'USER', username, tooLong);
    const { engine } = session;
    const request = {
      mechanism: 'USER',
      username,
      password: args,
      remoteAddress: session.remoteAddress,
      isTls: session.isTls,
      signal: session.signal,
    } as const;
    const result = await engine.authCache.authenticate(engine.authenticator, request, engine.limits);
    await finishLogin(session, 'USER', username, result);
  },
};
