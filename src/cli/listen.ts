import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import type { Pop3Server } from '../pop3/server.js';
import type { Plan } from './plan.js';

/** POP3 (and POP3S with a TLS port) on every address of the plan. */
export async function listenPop3(
  pop3: Pop3Server,
  config: DaemonConfig,
  plan: Plan,
  logger: pino.Logger,
): Promise<void> {
  const areDefaults = config.listen.length === 0;
  await listenAll(pop3, plan.listen, config.port, areDefaults, logger, 'POP3');
  if (config.tlsPort !== undefined) {
    const tlsPort = config.tlsPort;
    await listenAll(
      { listen: (o) => pop3.listen({ ...o, tls: true }) },
      plan.listen,
      tlsPort,
      areDefaults,
      logger,
      'POP3S',
    );
  }
}

/**
 * Listens on every address. When the addresses are the defaults, one that this machine cannot
 * use (no IPv6, say) is skipped with a warning; an address the operator named must work. Port 0
 * picks one free port at the first address and uses it for the others, so a client finds the
 * server on the same port over IPv4 and IPv6.
 * `role` names the listener in the error: `cannot listen for POP3 on ...`.
 */
export async function listenAll(
  server: { listen(options: { host: string; port: number }): Promise<{ port: number }> },
  addresses: readonly string[],
  port: number,
  areDefaults: boolean,
  logger: pino.Logger,
  role: string,
): Promise<void> {
  let chosen = port;
  for (const host of addresses) {
    try {
      chosen = (await server.listen({ host, port: chosen })).port;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (areDefaults && host.includes(':') && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
        logger.warn({ address: host, err: error }, 'IPv6 not available, skipped');
        continue;
      }
      throw new Error(`cannot listen for ${role} on ${host} port ${chosen}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}
