import { asError, MessageGoneError, Pop3Error, ProtocolError, RespCode } from '../errors.js';
import { protocolError, textError, wordsOf } from './text/index.js';
import { hasControlCharacter } from '../text.js';
import { COMMANDS } from './commands/index.js';
import { ConnectionGoneError } from './reply.js';
import type { CommandInfo, Session } from './session.js';

/** Outcome of one command, for logs and metrics. */
export type CommandResult = CommandInfo['result'];

/** A verb: letters, then letters or digits (UTF8), at most 8 (RFC 2449 keywords are 3 or 4). */
const VERB = /^[A-Za-z][A-Za-z0-9]{0,7}$/;
/** An HTTP request line sent to the POP3 port (a cross-protocol attack, or a lost browser). */
const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/\d/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs one command line and replies. This is the one place where errors become replies, their
 * texts worded in the session's language (`wordsOf`): `Pop3Error` → `-ERR [CODE] text`; `ProtocolError` → `-ERR text`, counted, closing past the
 * limit; a lost connection → nothing; anything else → `-ERR [SYS/TEMP]`, logged, closing.
 */
export async function dispatch(session: Session, line: Buffer | undefined): Promise<CommandResult> {
  const started = performance.now();
  let verb = '';
  let result: CommandResult;
  try {
    if (line === undefined) throw protocolError('lineTooLong');
    const text = decodeLine(line);
    const space = text.indexOf(' ');
    const word = space === -1 ? text : text.slice(0, space);
    if (!VERB.test(word)) throw protocolError(word === '' ? 'emptyCommand' : 'invalidCommand');
    verb = word.toUpperCase();
    const command = COMMANDS.get(verb);
    if (command === undefined) {
      if (session.state === 'AUTHORIZATION' && HTTP_REQUEST.test(text)) {
        throw textError('notPop3', [], undefined, { close: true });
      }
      throw protocolError('unknownCommand', verb);
    }
    if (!command.states.includes(session.state)) {
      throw protocolError('wrongState', verb, session.state);
    }
    await command.run(session, space === -1 ? '' : text.slice(space + 1));
    result = 'ok';
  } catch (error) {
    result = await replyToError(session, error);
  }
  // QUIT says so itself; anything else that ends the session here is a failure.
  if (session.isEnding) session.closeReason ??= result === 'gone' ? 'client' : 'error';
  const seconds = (performance.now() - started) / 1000;
  const level = result === 'internal' ? 'error' : 'debug';
  session.log[level](
    { cmd: verb === '' ? undefined : verb, result, ms: Math.round(seconds * 1000) },
    'command',
  );
  session.engine.onCommand({ verb, result, seconds });
  return result;
}

function decodeLine(line: Buffer): string {
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    throw protocolError('notUtf8Command');
  }
  if (hasControlCharacter(text, { isTabAllowed: true })) {
    throw protocolError('controlCharacters');
  }
  return text;
}

async function replyToError(session: Session, error: unknown): Promise<CommandResult> {
  if (error instanceof ConnectionGoneError || session.signal.aborted) {
    session.isEnding = true;
    return 'gone';
  }
  if (session.reply.isInMultiline) {
    // The +OK line is out and the body half sent: the reply cannot be finished, so the client
    // must see the connection close rather than a truncated message.
    session.isEnding = true;
    session.log.warn({ err: asError(error) }, 'transfer failed, closing');
    return error instanceof Pop3Error ? 'err' : 'internal';
  }
  try {
    if (error instanceof ProtocolError) {
      session.protocolErrors += 1;
      const isLast = session.protocolErrors >= session.engine.limits.maxProtocolErrors;
      if (isLast) session.isEnding = true;
      const words = wordsOf(session.language.catalogue, error);
      await session.reply.err(isLast ? session.say('tooManyBadCommands', words) : words);
      return 'protocol';
    }
    if (error instanceof Pop3Error) {
      if (error.close) session.isEnding = true;
      if (error instanceof MessageGoneError) session.log.info({ err: error }, 'message vanished');
      await session.reply.err(wordsOf(session.language.catalogue, error), error.code);
      return 'err';
    }
    session.isEnding = true;
    session.log.error({ err: asError(error) }, 'internal error');
    await session.reply.err(session.say('internalError'), RespCode.sysTemp);
    return 'internal';
  } catch (replyError) {
    if (replyError instanceof ConnectionGoneError) {
      session.isEnding = true;
      return 'gone';
    }
    throw replyError;
  }
}
