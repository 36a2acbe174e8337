import { readFile } from 'node:fs/promises';
import type { pino } from 'pino';
import { IntrospectionVerifier } from '../auth/oauth/introspection.js';
import { JwksVerifier, readJwksFile } from '../auth/oauth/jwks.js';
import type { OAuthVerifier } from '../auth/oauth/verifier.js';
import type { OAuthConfig } from '../config/oauth.js';

/**
 * The daemon's bearer-token verifier, from the `[oauth]` table (already validated). Files are read
 * here, at start, so that a missing one stops the daemon with a clear message.
 */
export async function createOAuthVerifier(config: OAuthConfig, logger: pino.Logger): Promise<OAuthVerifier> {
  const log = logger.child({ component: 'oauth' });
  const claims = config.usernameClaim === undefined ? {} : { usernameClaims: [config.usernameClaim] };
  const timeout = config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs };
  const issuer = config.issuer === undefined ? {} : { issuer: config.issuer };
  if (config.introspectionUrl !== undefined) {
    let clientSecret = config.clientSecret;
    if (config.clientSecretFile !== undefined) {
      try {
        clientSecret = (await readFile(config.clientSecretFile, 'utf8')).trim();
      } catch (error) {
        throw new Error(`cannot read the OAuth client secret file: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    return new IntrospectionVerifier({
      url: config.introspectionUrl,
      ...(config.clientId === undefined ? {} : { clientId: config.clientId }),
      ...(clientSecret === undefined ? {} : { clientSecret }),
      ...(config.audience === undefined ? {} : { audience: config.audience }),
      ...issuer,
      ...claims,
      ...timeout,
      logger: log,
    });
  }
  const audience = config.audience;
  if (audience === undefined) throw new Error('[oauth] audience is required with a JWKS');
  const keys =
    config.jwksUrl !== undefined
      ? { url: config.jwksUrl }
      : { jwks: await readJwksFile(config.jwksFile ?? '') };
  return new JwksVerifier({ keys, audience, ...issuer, ...claims, ...timeout, logger: log });
}
