import { readFile } from 'node:fs/promises';
import type { DaemonConfig } from '../config/config.js';
import { TlsContexts, type Pop3TlsOptions } from '../pop3/tls.js';
import { asFileError } from './start-errors.js';

/** Reads the configured PEM files (at start and on SIGHUP); undefined when TLS is not configured. */
export async function readCertificates(config: DaemonConfig): Promise<Pop3TlsOptions | undefined> {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const sni: Record<string, { cert: Buffer; key: Buffer }> = {};
  for (const [name, files] of Object.entries(config.sni)) sni[name] = await readPair(files.cert, files.key);
  return { ...(await readPair(config.tlsCert, config.tlsKey)), sni };
}

async function readPair(cert: string, key: string): Promise<{ cert: Buffer; key: Buffer }> {
  const certificate = {
    cert: await readFile(cert).catch(asFileError('TLS certificate', cert)),
    key: await readFile(key).catch(asFileError('TLS key', key)),
  };
  // Each pair is checked on its own, so that the message names the files at fault (an SNI
  // pair's, not the default's), and here rather than inside the server.
  try {
    new TlsContexts(certificate);
  } catch (error) {
    throw new Error(`unusable TLS certificate or key (${cert}, ${key}): ${(error as Error).message}`, {
      cause: error,
    });
  }
  return certificate;
}
