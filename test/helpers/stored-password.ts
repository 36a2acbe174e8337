import assert from 'node:assert/strict';
import type { StoredPassword } from '../../src/auth/passwords/types.js';
import { parseStoredPassword } from '../../src/auth/passwords/registry.js';

/** Parses a users-file password field that must be valid. */
export function parsed(field: string): StoredPassword {
  const result = parseStoredPassword(field);
  if (typeof result === 'string') assert.fail(`${field}: ${result}`);
  return result;
}

/** Whether `password` matches the stored field, through its scheme. */
export async function verifies(field: string, password: string): Promise<boolean> {
  const { scheme, data } = parsed(field);
  return scheme.verify(password, data);
}
