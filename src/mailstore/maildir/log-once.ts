/** Keys already logged (a damaged file, a special file...), so that each is logged once per process. */
const logged = new Set<string>();
/** Past this many keys the set starts again: bounded memory, at worst a line logged once more. */
const MAX_LOGGED = 10_000;

/**
 * True the first time a key is seen in this process, false after: for problems found at every
 * open of a maildrop that should reach the log once, however often the maildrop is opened.
 */
export function isFirstReport(key: string): boolean {
  if (logged.has(key)) return false;
  if (logged.size >= MAX_LOGGED) logged.clear();
  logged.add(key);
  return true;
}
