import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { pino } from 'pino';
import { DECOY_SECRET_BYTES } from '../auth/decoy.js';
import { isErrno } from '../errors.js';
import { fileError } from './start-errors.js';

/** In the mail root: the secret that decoys for unknown names are derived from (see `auth/decoy.ts`). */
export const DECOY_SECRET_FILE = '.poplar-secret';

/** How the primary hands the secret to its workers (forked with its environment). */
const ENV = 'POPLAR_DECOY_SECRET';

const HEX = new RegExp(`^[0-9a-f]{${DECOY_SECRET_BYTES * 2}}\\n?$`);

/**
 * Reads `<maildir>/.poplar-secret`, or makes it at the first start (32 random bytes in hex, mode
 * 0600, the mail root created 0700 if missing), and hands it to the workers this process forks.
 * The same secret from every worker and after every restart is what keeps an unknown name's SCRAM
 * salt and decoy hash from changing, which would show that the name does not exist. Throws,
 * naming the file, when it cannot be read or made, or does not hold a secret.
 */
export async function loadDecoySecret(maildir: string, logger: pino.Logger): Promise<Buffer> {
  const path = join(resolve(maildir), DECOY_SECRET_FILE);
  let text = await readSecretFile(path);
  if (text === undefined) {
    await mkdir(resolve(maildir), { recursive: true, mode: 0o700 });
    await createSecretFile(path);
    text = await readSecretFile(path);
    logger.info({ path }, 'decoy secret file created');
  }
  if (text === undefined || !HEX.test(text)) {
    throw new Error(
      `decoy secret file ${path} does not hold ${DECOY_SECRET_BYTES * 2} hex digits; remove it to make a new one`,
    );
  }
  const mode = (await stat(path)).mode & 0o077;
  if (mode !== 0) logger.warn({ path }, 'decoy secret file is readable by others; chmod 600 it');
  process.env[ENV] = text.trim();
  return Buffer.from(text.trim(), 'hex');
}

/** The secret the primary handed over (in a worker, or in the single process after {@link loadDecoySecret}). */
export function sharedDecoySecret(): Buffer | undefined {
  const text = process.env[ENV];
  return text !== undefined && HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
}

async function readSecretFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw fileError('decoy secret file', path, error);
  }
}

/** Writes a temporary file and links it into place: a reader never sees a half-written secret. */
async function createSecretFile(path: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, `${randomBytes(DECOY_SECRET_BYTES).toString('hex')}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    await link(temporary, path).catch((error: unknown) => {
      // Another process made it first: theirs is the one.
      if (!isErrno(error, 'EEXIST')) throw error;
    });
  } catch (error) {
    throw fileError('decoy secret file', path, error);
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}
