/**
 * Whether `text` holds an ASCII control character: C0 (U+0000 to U+001F) or DEL (U+007F). Such
 * characters have no place in a command, a password, a user name or a file name: they would break
 * line-based files and logs. A tab counts too unless `isTabAllowed` (a password may hold one).
 * Characters above U+007F (C1 controls included) are not checked.
 */
export function hasControlCharacter(
  text: string,
  options: { readonly isTabAllowed?: boolean } = {},
): boolean {
  const isTabAllowed = options.isTabAllowed === true;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x7f || (code < 0x20 && !(code === 0x09 && isTabAllowed))) return true;
  }
  return false;
}

/** `1 message`, `2 messages`, `0 messages`: a count with its noun, singular for one. */
export function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
