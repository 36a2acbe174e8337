/** The errors for settings the TOML file names that Poplar does not know, with a did-you-mean. */

/**
 * `unknown setting "prot" (did you mean "port"?)` for each of `keys` not among `known`; a key that
 * belongs in `[limits]` (`limits`, when given) is sent there.
 */
export function unknownKeys(
  keys: readonly string[],
  known: readonly string[],
  what: string,
  limits: readonly string[] = [],
): string[] {
  const nearest = (key: string, among: readonly string[]): string | undefined =>
    among.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
  return keys
    .filter((key) => !known.includes(key))
    .map((key) => {
      const near = nearest(key, known);
      const limit = near === undefined ? nearest(key, limits) : undefined;
      const hint =
        near !== undefined
          ? ` (did you mean "${near}"?)`
          : limit !== undefined
            ? ` (did you mean "${limit}" in [limits]?)`
            : '';
      return `unknown ${what} "${key}"${hint}`;
    });
}

/** Levenshtein distance (insertions, deletions, substitutions), case-insensitive. */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const next = [i];
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      next.push(Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost));
    }
    row = next;
  }
  return row[y.length] ?? 0;
}
