import { textError, protocolError, LANGUAGES, type Language } from '../text/index.js';
import type { Command } from '../command.js';

/** RFC 4647 section 2.1: a basic language range (`es`, `es-MX`, `i-default`) or `*`. */
const LANGUAGE_RANGE = /^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$/;

/**
 * The language for `range` by RFC 4647 lookup (section 3.4): the range itself, then shorter by one
 * subtag at a time (`es-MX` finds `es`); `*` is the default language (`i-default`).
 */
export function lookUpLanguage(range: string): Language | undefined {
  if (range === '*') return LANGUAGES.find((l) => l.tag === 'i-default');
  let tag = range.toLowerCase();
  for (;;) {
    const found = LANGUAGES.find((l) => l.tag === tag);
    if (found !== undefined) return found;
    const dash = tag.lastIndexOf('-');
    if (dash === -1) return undefined;
    tag = tag.slice(0, dash);
    // A single-letter subtag (a singleton such as `x`) cannot end a range (RFC 4647 section 3.4).
    if (/-[a-z0-9]$/.test(tag)) tag = tag.slice(0, -2);
  }
}

/**
 * LANG (RFC 6856 section 3), in AUTHORIZATION and TRANSACTION. Without an argument, the languages
 * as `tag name` lines. With a language range, the session's texts switch to the language it
 * finds, and the answer is already in it, starting with its tag: `+OK es ...`. A range that finds
 * none is refused (`-ERR`, texts unchanged); one that is not a language range at all is a protocol
 * error. Response codes and protocol lines never change.
 */
export const lang: Command = {
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(session, args) {
    const range = args.trim();
    if (range === '') {
      await session.reply.lines(
        session.say('languages'),
        LANGUAGES.map((l) => `${l.tag} ${l.name}`),
      );
      return;
    }
    if (!LANGUAGE_RANGE.test(range) || range.length > 64)
      throw protocolError('usage', 'LANG [language-range]');
    const language = lookUpLanguage(range);
    if (language === undefined) throw textError('unknownLanguage', [range]);
    session.language = language;
    await session.reply.ok(session.say('languageChanged', language.tag));
  },
};
