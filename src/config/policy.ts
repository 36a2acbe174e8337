import { ConfigError } from '../errors.js';
import type { UserPolicyOverrides } from '../policy.js';
import { POLICY_FIELDS, POLICY_KEYS, readPolicy } from '../policy-fields.js';
import { unknownKeys } from './unknown-keys.js';

/** The keys of the `[policy]` table: the server-wide defaults of every user's policy (docs/policy.md). */
export const POLICY_TOML_KEYS = POLICY_KEYS.map((key) => POLICY_FIELDS[key].toml);

/**
 * Reads `[policy]`: each value as a user's own is read (`delete = "move:Trash"`, `expire = 0` or
 * `"never"`, `downloadPerDay = "500M"` or a number, `appPasswordsOnly = true`), by the same parser.
 */
export function parsePolicyTable(value: unknown, source: string): UserPolicyOverrides {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`${source}: [policy] must be a table`);
  const table = value as Record<string, unknown>;
  const unknown = unknownKeys(Object.keys(table), POLICY_TOML_KEYS, 'policy setting');
  if (unknown.length > 0) throw new ConfigError(`${source}: ${unknown.join('; ')}`, { settings: ['policy'] });
  const reading = readPolicy(
    (key) => {
      const v = table[POLICY_FIELDS[key].toml];
      return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === undefined
        ? v
        : `(a ${typeof v})`;
    },
    (key) => `policy.${POLICY_FIELDS[key].toml}`,
  );
  if (!reading.ok)
    throw new ConfigError(`${source}: ${reading.problems.join('; ')}`, { settings: ['policy'] });
  return reading.policy;
}
