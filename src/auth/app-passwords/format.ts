import { hasControlCharacter } from '../../text.js';
import { parseStoredPassword } from '../passwords/registry.js';
import type { StoredPassword } from '../passwords/types.js';

/**
 * The two files of a user's app passwords, in the user's maildir folder `<root>/<user>/`, and
 * their validation (they are hostile input: size, shape and every field are checked on read).
 *
 * - `.poplar-app-passwords`: the labels, their hashes and creation times. Written only by the
 *   monitor's add and revoke.
 * - `.poplar-app-passwords-used`: each app password's last use (time, client address), by id.
 *   Written at every app-password login. Kept apart so that a login's write can never bring back
 *   an app password revoked at the same instant on another worker or node: the worst a race does
 *   is lose one "last use".
 */

export const APP_PASSWORDS_FILE = '.poplar-app-passwords';
export const APP_PASSWORDS_USED_FILE = '.poplar-app-passwords-used';

/** App passwords a user may have; the file of a user with more is refused as damaged. */
export const MAX_APP_PASSWORDS = 20;
/** Characters (code points) in a label. */
export const MAX_LABEL_CHARS = 64;
/** Bytes of either file: 20 entries need about 4 KiB; anything bigger is refused unread. */
export const MAX_APP_PASSWORDS_FILE_BYTES = 16_384;
/** The scheme app passwords are hashed with: one salted SHA-256 (the secret is random; see docs/app-passwords.md). */
export const APP_PASSWORD_SCHEME = 'SSHA256';

export interface AppPasswordEntry {
  /** Random, 16 hex digits: names the entry in the last-use file (a label may be reused after a revoke). */
  readonly id: string;
  readonly label: string;
  /** `{SSHA256}` data of the secret, as the password registry writes it. */
  readonly hash: string;
  /** ISO 8601, UTC. */
  readonly created: string;
}

/** An entry ready to check: its stored password parsed. */
export interface CheckableEntry extends AppPasswordEntry {
  readonly stored: StoredPassword;
}

export interface AppPasswordUse {
  /** ISO 8601, UTC. */
  readonly at: string;
  /** The client's address, as the engine saw it (after the PROXY protocol). */
  readonly address: string;
}

/** Why a label cannot be used, or undefined when it can: 1 to 64 characters, none a control character, not blank. */
export function labelProblem(label: string): string | undefined {
  const chars = Array.from(label).length;
  if (chars === 0 || chars > MAX_LABEL_CHARS) return `a label is 1 to ${MAX_LABEL_CHARS} characters`;
  if (hasControlCharacter(label) || /[\u0080-\u009f\u2028\u2029]/.test(label))
    return 'a label has no control character';
  if (label.trim() !== label || label.trim() === '') return 'a label does not start or end with a space';
  return undefined;
}

const ID = /^[0-9a-f]{16}$/;
const MAX_ADDRESS_CHARS = 64;

function isIsoTime(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The entries of `.poplar-app-passwords`, or a reason string when the file is damaged. */
export function parseAppPasswords(text: string): readonly CheckableEntry[] | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isRecord(doc) || doc['version'] !== 1 || !Array.isArray(doc['passwords']))
    return 'not a version 1 app passwords file';
  const list = doc['passwords'] as unknown[];
  if (list.length > MAX_APP_PASSWORDS) return `more than ${MAX_APP_PASSWORDS} app passwords`;
  const entries: CheckableEntry[] = [];
  for (const [i, item] of list.entries()) {
    if (!isRecord(item)) return `entry ${i + 1} is not an object`;
    const { id, label, hash, created } = item;
    if (typeof id !== 'string' || !ID.test(id)) return `entry ${i + 1}: bad id`;
    if (typeof label !== 'string' || labelProblem(label) !== undefined) return `entry ${i + 1}: bad label`;
    if (!isIsoTime(created)) return `entry ${i + 1}: bad creation time`;
    // Only the one cheap scheme: a planted {ARGON2ID} or {PLAIN} would change what a login costs.
    if (typeof hash !== 'string' || !hash.startsWith(`{${APP_PASSWORD_SCHEME}}`))
      return `entry ${i + 1}: bad hash`;
    const stored = parseStoredPassword(hash);
    if (typeof stored === 'string') return `entry ${i + 1}: bad hash`;
    if (entries.some((e) => e.id === id || e.label === label)) return `entry ${i + 1}: duplicate`;
    entries.push({ id, label, hash, created, stored });
  }
  return entries;
}

/** `.poplar-app-passwords` for these entries. */
export function formatAppPasswords(entries: readonly AppPasswordEntry[]): string {
  const passwords = entries.map(({ id, label, hash, created }) => ({ id, label, hash, created }));
  return `${JSON.stringify({ version: 1, passwords }, null, 1)}\n`;
}

/** The uses in `.poplar-app-passwords-used`, by entry id, or a reason string when the file is damaged. */
export function parseUses(text: string): ReadonlyMap<string, AppPasswordUse> | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isRecord(doc) || doc['version'] !== 1 || !isRecord(doc['uses'])) return 'not a version 1 uses file';
  const uses = new Map<string, AppPasswordUse>();
  for (const [id, use] of Object.entries(doc['uses'])) {
    if (uses.size >= MAX_APP_PASSWORDS) return `more than ${MAX_APP_PASSWORDS} uses`;
    if (!ID.test(id) || !isRecord(use)) return 'bad entry';
    const { at, address } = use;
    if (!isIsoTime(at)) return 'bad time';
    if (typeof address !== 'string' || address.length > MAX_ADDRESS_CHARS || hasControlCharacter(address))
      return 'bad address';
    uses.set(id, { at, address });
  }
  return uses;
}

export function formatUses(uses: ReadonlyMap<string, AppPasswordUse>): string {
  return `${JSON.stringify({ version: 1, uses: Object.fromEntries(uses) })}\n`;
}
