import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import type { SecureContext } from 'node:tls';
import type { pino } from 'pino';
import { formatHostPort, type DaemonConfig } from '../config/config.js';
import { isUserdbUrl } from '../config/scale-out.js';
import { loadAssets } from '../dashboard/assets.js';
import { DashboardAuth } from '../dashboard/auth.js';
import { DashboardRoutes } from '../dashboard/routes.js';
import { Sampler } from '../dashboard/sampler.js';
import type { Facts } from '../dashboard/web/state.js';
import { isLoopbackAddress } from '../loopback.js';
import type { MetricsFallback } from '../metrics/http.js';
import type { AdminStore } from '../monitor/admins.js';
import { TlsContexts, type Pop3TlsOptions } from '../pop3/tls.js';
import type { Plan } from './plan.js';
import type { Pop3Side } from './pop3-side.js';
import { withoutPassword } from './print-config.js';
import { version } from './version.js';

/** What the metrics listener serves besides /metrics and /healthz when the dashboard is on. */
export interface DashboardMount {
  /** How the page is opened: `https` off loopback. */
  readonly scheme: 'http' | 'https';
  readonly logger: pino.Logger;
  readonly fallback: MetricsFallback;
  /** The POP3 certificates for HTTPS on the listener; undefined: plain HTTP only (loopback). */
  readonly tls: ((servername: string) => SecureContext) | undefined;
  close(): void;
}

export interface DashboardWiring {
  readonly config: DaemonConfig;
  readonly plan: Plan;
  readonly side: Pop3Side;
  /** The monitor's admins; undefined when the monitor is off. */
  readonly admins: AdminStore | undefined;
  /** The POP3 certificates in force (SIGHUP may change them). */
  readonly tls: () => Pop3TlsOptions | undefined;
  readonly logger: pino.Logger;
  /** The POP3 addresses bound (the configuration's port may be 0). */
  readonly addresses: readonly { readonly address: string; readonly port: number }[];
}

/** The effective configuration, summed up for the page: no password, no secret. */
export function configSummary(
  config: DaemonConfig,
  addresses: DashboardWiring['addresses'],
): [string, string][] {
  const users = config.users;
  const pairs: [string, string | undefined][] = [
    ['POP3', addresses.map((a) => formatHostPort(a.address, a.port)).join(', ')],
    ['POP3S port', config.tlsPort === undefined ? 'none' : String(config.tlsPort)],
    ['mail root', resolve(config.maildir)],
    [
      'users',
      users === undefined ? 'demo users file' : isUserdbUrl(users) ? withoutPassword(users) : resolve(users),
    ],
    ['TLS certificate', config.tlsCert === undefined ? 'none' : resolve(config.tlsCert)],
    ['cleartext logins', config.allowCleartextLogin ? 'allowed' : 'over TLS or loopback only'],
    ['workers', String(config.workers)],
    ['cluster', config.cluster === undefined ? 'one node' : withoutPassword(config.cluster)],
    ['node name', config.cluster === undefined ? undefined : config.nodeName],
    ['max connections', String(config.limits.maxConnections)],
    ['per address', String(config.limits.maxConnectionsPerIp)],
    ['idle timeout', `${String(Math.round(config.limits.idleTimeoutMs / 1000))} s`],
    ['log level', config.logLevel],
  ];
  return pairs.filter((p): p is [string, string] => p[1] !== undefined);
}

/** The default certificate's subject and end of validity, read again only when it changes. */
function certificateFacts(tls: () => Pop3TlsOptions | undefined): () => Facts['certificate'] {
  let seen: { cert: string | Buffer; facts: Facts['certificate'] } | undefined;
  return () => {
    const cert = tls()?.cert;
    if (cert === undefined) return null;
    if (seen?.cert !== cert) {
      let facts: Facts['certificate'];
      try {
        const x509 = new X509Certificate(cert);
        facts = { subject: x509.subject.replaceAll('\n', ', '), notAfter: Date.parse(x509.validTo) };
      } catch {
        facts = null;
      }
      seen = { cert, facts };
    }
    return seen.facts;
  };
}

/**
 * The dashboard on the metrics listener, or undefined (with a line that says why) when it cannot
 * be served safely: it needs the monitor's admins file, and off loopback it is served over HTTPS
 * only, with the POP3 certificate.
 */
export async function mountDashboard(wiring: DashboardWiring): Promise<DashboardMount | undefined> {
  const { config, plan, side, admins, logger } = wiring;
  const listen = config.metricsListen;
  if (listen === undefined) return undefined;
  const log = logger.child({ component: 'dashboard' });
  if (admins === undefined) {
    log.warn({}, 'dashboard off: it needs the monitor (its admins log in), and the monitor is off');
    return undefined;
  }
  const isLoopback = isLoopbackAddress(listen.host);
  const certificates = wiring.tls();
  if (!isLoopback && certificates === undefined) {
    log.warn(
      { host: listen.host },
      `dashboard off: the metrics listener is not on loopback (${listen.host}) and POP3 has no certificate to serve it over HTTPS; ` +
        'give --tls-cert and --tls-key, or listen for metrics on loopback',
    );
    return undefined;
  }
  let assets;
  try {
    assets = await loadAssets();
  } catch (error) {
    log.error({ err: error }, 'dashboard off: its page was not built (npm run build)');
    return undefined;
  }
  const contexts = certificates === undefined ? undefined : new TlsContexts(certificates);
  let contextsOf = certificates;
  // The configuration is the one of the start; the certificate is read again when SIGHUP changed it.
  const summary = configSummary(config, wiring.addresses);
  const certificate = certificateFacts(wiring.tls);
  const sampler = new Sampler({
    pop3: side.monitored,
    logger: log,
    facts: () => ({
      version: version(),
      startedAt: side.pop3.stats.startedAt,
      workers: config.workers,
      config: summary,
      certificate: certificate(),
    }),
  });
  sampler.start();
  const routes = new DashboardRoutes({
    auth: new DashboardAuth({ admins, logger: log, refusesDefaultToken: !plan.isDemo || !isLoopback }),
    sampler,
    assets,
    pop3: side.monitored,
    logger: log,
    requiresTls: !isLoopback,
  });
  return {
    scheme: isLoopback ? 'http' : 'https',
    logger: log,
    fallback: (req, res, isSecure) => {
      routes.handle(req, res, isSecure);
    },
    tls:
      contexts === undefined
        ? undefined
        : (name) => {
            // Certificates read again on SIGHUP are taken at the next handshake.
            const now = wiring.tls();
            if (now !== undefined && now !== contextsOf) {
              contextsOf = now;
              contexts.update(now);
            }
            return contexts.forName(name);
          },
    close: () => {
      routes.close();
      sampler.stop();
    },
  };
}
