import { Pop3Error, ProtocolError, type ReplyText, type RespCode, type SharedTextKey } from '../../errors.js';
import { en, type Catalogue } from './en.js';
import { es } from './es.js';

export type { Catalogue } from './en.js';

/** A text's key in the catalogue. */
export type TextKey = keyof Catalogue;

type Widened<T extends readonly unknown[]> = {
  [I in keyof T]: T[I] extends string ? T[I] | ReplyText : T[I];
};

/** A text's values; where the text takes a string, a nested text may stand for it. */
export type TextValues<K extends TextKey> =
  Widened<Parameters<Catalogue[K]>> extends infer T extends readonly unknown[] ? T : never;

/** One language LANG can switch to (RFC 6856 section 3): its tag, its name in itself, its texts. */
export interface Language {
  readonly tag: string;
  readonly name: string;
  readonly catalogue: Catalogue;
}

/**
 * The languages, in LANG's listing order. `i-default` (RFC 2277) is the language of a session
 * until LANG changes it, as RFC 6856 section 3 requires; its texts are the English ones.
 */
export const LANGUAGES: readonly Language[] = [
  { tag: 'en', name: 'English', catalogue: en },
  { tag: 'es', name: 'Español', catalogue: es },
  { tag: 'i-default', name: 'Default language', catalogue: en },
];

export const DEFAULT_LANGUAGE = LANGUAGES[LANGUAGES.length - 1] as Language;

// Every key the store and the authenticators throw is a text of the catalogue.
en satisfies Record<SharedTextKey, () => string>;

/** A reference to a text, worded later in a session's language (`render`). */
export function textOf<K extends TextKey>(key: K, ...values: TextValues<K>): ReplyText {
  return { key, values: values as ReplyText['values'] };
}

/**
 * `text` in `catalogue`'s language, nested texts worded first; undefined for a key the catalogue
 * lacks (a `Pop3Error` from a library's hook or backend carrying a key of its own).
 */
export function render(catalogue: Catalogue, text: ReplyText): string | undefined {
  const words = (catalogue as unknown as Record<string, ((...values: unknown[]) => string) | undefined>)[
    text.key
  ];
  if (typeof words !== 'function') return undefined;
  const values = text.values.map((value) =>
    typeof value === 'object' ? (render(catalogue, value) ?? value.key) : value,
  );
  return words(...values);
}

/** `text` in English, for logs and for `Error.message`. */
export const english = (text: ReplyText): string => render(en, text) ?? text.key;

/** English texts without values, by their words: for session endings the server is handed as text. */
const ENDINGS: ReadonlyMap<string, TextKey> = new Map(
  (Object.keys(en) as TextKey[])
    .filter((key) => en[key].length === 0)
    .map((key) => [(en[key] as () => string)(), key]),
);

/**
 * A reason for ending a session (`Pop3Server.endSessionsOf`, a shutdown, the lock lost) in
 * `catalogue`'s language: the reasons travel as English text (across workers and nodes), so a text
 * of the English catalogue is worded again; any other text is a library's own, sent as it is.
 */
export function endingText(catalogue: Catalogue, message: string): string {
  const key = ENDINGS.get(message);
  return key === undefined ? message : (render(catalogue, { key, values: [] }) ?? message);
}

/** What the client is told for `error`: its text in `catalogue`, or its message when it has none. */
export function wordsOf(catalogue: Catalogue, error: Pop3Error | ProtocolError): string {
  return error.text === undefined ? error.message : (render(catalogue, error.text) ?? error.message);
}

/** A `Pop3Error` with a catalogue text: English in its message, the session's language in the reply. */
export function textError<K extends TextKey>(
  key: K,
  values: TextValues<K>,
  code?: RespCode,
  options: { readonly close?: boolean } = {},
): Pop3Error {
  const text = textOf(key, ...values);
  return new Pop3Error(english(text), code, { ...options, text });
}

/** A `ProtocolError` with a catalogue text. */
export function protocolError<K extends TextKey>(key: K, ...values: TextValues<K>): ProtocolError {
  const text = textOf(key, ...values);
  return new ProtocolError(english(text), { text });
}
