import { canApop } from '../../auth/types.js';
import { protocolError, textError } from '../text/index.js';
import { splitArgs } from '../arguments.js';
import { finishLogin } from '../login-flow.js';
import type { Command } from '../command.js';
import { prepareUserName } from '../../user.js';

const MD5_HEX = /^[0-9a-fA-F]{32}$/;

/** RFC 1939 section 7: `APOP name digest`, offered when the authenticator can check it. */
export const apop: Command = {
  states: ['AUTHORIZATION'],
  hidesArgs: true,
  async run(session, args) {
    const { authenticator } = session.engine;
    if (session.apopTimestamp === undefined || !canApop(authenticator)) {
      throw textError('apopUnavailable', []);
    }
    const [given, digest] = splitArgs(args, 2);
    if (given === undefined || digest === undefined || !MD5_HEX.test(digest)) {
      throw protocolError('usage', 'APOP name digest');
    }
    const username = prepareUserName(given);
    session.pendingUser = undefined;
    const result = await authenticator.authenticateApop({
      mechanism: 'APOP',
      username,
      timestamp: session.apopTimestamp,
      digest: digest.toLowerCase(),
      remoteAddress: session.remoteAddress,
      isTls: session.isTls,
      signal: session.signal,
    });
    await finishLogin(session, 'APOP', username, result);
  },
};
