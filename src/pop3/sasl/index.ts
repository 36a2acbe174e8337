import { login } from './login.js';
import { plain } from './plain.js';
import type { SaslMechanism } from './types.js';

export type { SaslContext, SaslExchange, SaslMechanism, SaslStep } from './types.js';
export { SaslError } from './types.js';

/** Every mechanism Poplar implements, in the order CAPA lists them. */
export const MECHANISMS: readonly SaslMechanism[] = [plain, login];

export function mechanismMap(
  mechanisms: readonly SaslMechanism[] = MECHANISMS,
): ReadonlyMap<string, SaslMechanism> {
  return new Map(mechanisms.map((m) => [m.name, m]));
}
