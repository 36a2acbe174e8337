import type { Algorithm } from '@node-rs/argon2';
import { malformed, unsupported, type PasswordScheme } from './types.js';

/**
 * Dovecot's `{ARGON2I}` and `{ARGON2ID}`: PHC strings as libsodium writes them,
 * `$argon2id$v=19$m=65536,t=3,p=1$salt$hash` (unpadded base64). Verified and made by
 * @node-rs/argon2, a native binding that runs on libuv's thread pool, off the event loop.
 */

/** Loaded on first use: a platform without the native binding can still use every other scheme. */
let binding: Promise<typeof import('@node-rs/argon2')> | undefined;
const argon2 = () => (binding ??= import('@node-rs/argon2'));

/** Hashes needing more memory are refused; 1 GiB is the most `doveadm pw` asks for (`-r 4` and up). */
export const ARGON2_MAX_MEMORY_KIB = 1_048_576;
/** Hashes with more passes are refused: at 1 GiB a login would take minutes. */
export const ARGON2_MAX_TIME_COST = 100;

/** Cost parameters for new hashes: those `doveadm pw` (libsodium's "interactive" limits) writes. */
export const ARGON2_DEFAULTS = {
  ARGON2ID: { memoryCost: 65_536, timeCost: 3 },
  ARGON2I: { memoryCost: 32_768, timeCost: 4 },
} as const;

/** Version 19 only, parameters in m, t, p order (libsodium refuses any other order). */
const PHC_FORM =
  /^\$(argon2id|argon2i)\$v=19\$m=([1-9][0-9]{0,9}),t=([1-9][0-9]{0,9}),p=([1-9][0-9]{0,2})\$([A-Za-z0-9+/]{11,64})\$([A-Za-z0-9+/]{6,86})$/;

/** Unpadded base64 that decodes and re-encodes to itself. */
const isCanonical = (base64: string): boolean =>
  Buffer.from(base64, 'base64').toString('base64').replace(/=+$/, '') === base64;

function argon2Scheme(name: 'ARGON2I' | 'ARGON2ID', algorithm: Algorithm): PasswordScheme {
  const variant = name.toLowerCase();
  const problem = (data: string): string | undefined => {
    const m = PHC_FORM.exec(data);
    if (m === null) return malformed(name);
    const [, type, memory = '', time = '', lanes = '', salt = '', hash = ''] = m;
    const memoryKib = Number(memory);
    const timeCost = Number(time);
    // Argon2 needs 8 KiB per lane; the binding refuses base64 with stray bits.
    if (type !== variant || memoryKib < 8 * Number(lanes) || !isCanonical(salt) || !isCanonical(hash)) {
      return malformed(name);
    }
    if (memoryKib > ARGON2_MAX_MEMORY_KIB) {
      return unsupported(name, `m=${memoryKib} KiB is above Poplar's limit of ${ARGON2_MAX_MEMORY_KIB}`);
    }
    if (timeCost > ARGON2_MAX_TIME_COST) {
      return unsupported(name, `t=${timeCost} is above Poplar's limit of ${ARGON2_MAX_TIME_COST}`);
    }
    return undefined;
  };
  return {
    name,
    isPlaintext: false,
    problem,
    async verify(password, data) {
      if (problem(data) !== undefined) return false;
      return (await argon2()).verify(data, password);
    },
    async hash(password) {
      const { memoryCost, timeCost } = ARGON2_DEFAULTS[name];
      // Salt: 16 random bytes, made by the binding. One lane, as libsodium (and so Dovecot) uses.
      return (await argon2()).hash(password, {
        algorithm,
        memoryCost,
        timeCost,
        parallelism: 1,
        outputLen: 32,
      });
    },
  };
}

// The binding's Algorithm is an ambient const enum, which verbatimModuleSyntax cannot read: its
// values, from @node-rs/argon2's index.d.ts.
/* eslint-disable @typescript-eslint/no-unsafe-enum-assignment */
const ARGON2I = 1 as Algorithm;
const ARGON2ID = 2 as Algorithm;
/* eslint-enable @typescript-eslint/no-unsafe-enum-assignment */

export const ARGON2_SCHEMES: readonly PasswordScheme[] = [
  argon2Scheme('ARGON2I', ARGON2I),
  argon2Scheme('ARGON2ID', ARGON2ID),
];
