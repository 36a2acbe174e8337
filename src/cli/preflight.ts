import type { pino } from 'pino';
import type { OAuthVerifier } from '../auth/oauth/verifier.js';
import type { DaemonConfig } from '../config/config.js';
import type { Pop3TlsOptions } from '../pop3/tls.js';
import { readCertificates } from './certificates.js';
import { createOAuthVerifier } from './oauth.js';
import { checkMailRoot, planOf, refuseExposedDefaults, type Plan } from './plan.js';
import { resolveRunAs, type RunAs } from './privileges.js';

/** What the start-up checks found: the daemon goes on with it, `poplar check-config` prints it. */
export interface Preflight {
  readonly plan: Plan;
  readonly runAs: RunAs | undefined;
  readonly oauth: OAuthVerifier | undefined;
  readonly tls: Pop3TlsOptions | undefined;
}

/**
 * Every check the daemon makes before it creates a file or binds a port, in its order: the plan,
 * the account of --user, the mail root, the demo credentials off loopback, the OAuth files and the
 * certificates. Throws the error the daemon stops with. `poplar check-config` runs the same.
 */
export async function preflight(config: DaemonConfig, logger: pino.Logger): Promise<Preflight> {
  const plan = planOf(config);
  const runAs = await resolveRunAs(config);
  await checkMailRoot(config.maildir, plan, logger);
  await refuseExposedDefaults(plan);
  // Bearer tokens log in users of the users file only: a token never creates a mailbox. The files
  // are read here even when workers serve POP3, so that a missing one stops the daemon at once.
  const oauth = config.oauth === undefined ? undefined : await createOAuthVerifier(config.oauth, logger);
  // Before anything is created or watched: a bad certificate must end the process at once.
  const tls = await readCertificates(config);
  return { plan, runAs, oauth, tls };
}
