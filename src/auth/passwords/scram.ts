import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { safeEqual } from '../compare.js';
import {
  malformed,
  unsupported,
  type PasswordScheme,
  type ScramCredentials,
  type StoredPassword,
} from './types.js';

const pbkdf2Async = promisify(pbkdf2);

/** Iterations for new hashes: Dovecot's default, and RFC 7677's minimum. */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
/** Dovecot refuses fewer ("Invalid SCRAM-SHA-256 iteration count in passdb") and more than INT_MAX. */
const MIN_ITERATIONS = 4096;
const MAX_ITERATIONS = 2 ** 31 - 1;
/** Hashes with more iterations are refused when the users file is read: USER/PASS would cost seconds of CPU. */
export const SCRAM_MAX_ITERATIONS = 2_000_000;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SHA256_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

function parseScram(data: string): ScramCredentials | undefined {
  const fields = data.split(',');
  if (fields.length !== 4) return undefined;
  const [iterationsText = '', salt = '', storedKey = '', serverKey = ''] = fields;
  if (!/^[1-9][0-9]{0,9}$/.test(iterationsText)) return undefined;
  const iterations = Number(iterationsText);
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) return undefined;
  if (salt === '' || !BASE64.test(salt) || !SHA256_BASE64.test(storedKey) || !SHA256_BASE64.test(serverKey)) {
    return undefined;
  }
  return {
    iterations,
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
}

/** SaltedPassword, ClientKey, StoredKey and ServerKey for `password`. */
async function deriveKeys(
  password: string,
  salt: Buffer,
  iterations: number,
): Promise<{ storedKey: Buffer; serverKey: Buffer }> {
  const salted = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

export const scramSha256: PasswordScheme = {
  name: 'SCRAM-SHA-256',
  isPlaintext: false,
  problem: (data) => {
    const parsed = parseScram(data);
    if (parsed === undefined) return malformed('SCRAM-SHA-256');
    if (parsed.iterations > SCRAM_MAX_ITERATIONS) {
      return unsupported(
        'SCRAM-SHA-256',
        `${parsed.iterations} iterations is above Poplar's limit of ${SCRAM_MAX_ITERATIONS}`,
      );
    }
    return undefined;
  },
  async verify(password, data) {
    const stored = parseScram(data);
    if (stored === undefined) return false;
    const { storedKey } = await deriveKeys(password, stored.salt, stored.iterations);
    return safeEqual(storedKey, stored.storedKey);
  },
  async hash(password) {
    const salt = randomBytes(16);
    const { storedKey, serverKey } = await deriveKeys(password, salt, SCRAM_DEFAULT_ITERATIONS);
    const keys = `${storedKey.toString('base64')},${serverKey.toString('base64')}`;
    return `${SCRAM_DEFAULT_ITERATIONS},${salt.toString('base64')},${keys}`;
  },
};

/** SCRAM-SHA-256 credentials for `password` with a given salt (StaticAuthenticator's derived salts). */
export async function scramCredentialsOf(
  password: string,
  salt: Buffer,
  iterations = SCRAM_DEFAULT_ITERATIONS,
): Promise<ScramCredentials> {
  return { iterations, salt, ...(await deriveKeys(password, salt, iterations)) };
}

/**
 * The SCRAM-SHA-256 credentials in a stored password, for the SASL mechanism; undefined for any
 * other scheme (a `{PLAIN}` user cannot use SCRAM until the password is rehashed).
 */
export function scramCredentials(stored: StoredPassword): ScramCredentials | undefined {
  return stored.scheme === scramSha256 ? parseScram(stored.data) : undefined;
}
