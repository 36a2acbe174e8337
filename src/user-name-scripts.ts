/**
 * The scripts a user name's letters may come from, and how they may mix: letters of one script, or
 * Latin with Chinese, Japanese or Korean (the "highly restrictive" level of Unicode UTS #39
 * section 5.2). So `аlice` with a Cyrillic `а` is refused, not a second look-alike `alice`. A
 * letter of a script not listed here is refused too: the list can grow when someone needs one.
 */
const SCRIPTS = [
  'Latin',
  'Greek',
  'Cyrillic',
  'Armenian',
  'Georgian',
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Devanagari',
  'Bengali',
  'Gurmukhi',
  'Gujarati',
  'Oriya',
  'Tamil',
  'Telugu',
  'Kannada',
  'Malayalam',
  'Sinhala',
  'Thai',
  'Lao',
  'Tibetan',
  'Myanmar',
  'Khmer',
  'Mongolian',
  'Ethiopic',
  'Hangul',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Han',
] as const;
type Script = (typeof SCRIPTS)[number];

/** Script_Extensions, so that a mark shared by two scripts (Japanese `ー`) counts for both. */
const PATTERNS: readonly (readonly [Script, RegExp])[] = SCRIPTS.map((s) => [
  s,
  new RegExp(`\\p{scx=${s}}`, 'u'),
]);

const GROUPS: readonly ReadonlySet<Script>[] = [
  ...SCRIPTS.map((s) => new Set<Script>([s])),
  new Set<Script>(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set<Script>(['Latin', 'Han', 'Hangul']),
  new Set<Script>(['Latin', 'Han', 'Bopomofo']),
];

const LETTER = /\p{L}/u;

/** Whether the letters of `name` come from one script, or from one of the CJK mixes above. */
export function hasOneScript(name: string): boolean {
  const letters: (readonly Script[])[] = [];
  for (const char of name) {
    if (!LETTER.test(char)) continue;
    const scripts = PATTERNS.filter(([, pattern]) => pattern.test(char)).map(([script]) => script);
    if (scripts.length === 0) return false;
    letters.push(scripts);
  }
  return GROUPS.some((group) => letters.every((scripts) => scripts.some((s) => group.has(s))));
}
