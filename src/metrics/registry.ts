import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MonitorServer } from '../monitor/server.js';
import { COMMANDS } from '../pop3/commands/index.js';
import type { Pop3Server } from '../pop3/server.js';

/** Label values come from closed sets: a verb we do not know becomes `other` (never client text). */
const KNOWN_VERBS = new Set(COMMANDS.keys());
const commandLabel = (verb: string): string =>
  verb === '' ? 'none' : KNOWN_VERBS.has(verb) ? verb : 'other';
const KNOWN_METHODS = new Set([
  'USER',
  'APOP',
  'PLAIN',
  'LOGIN',
  'CRAM-MD5',
  'SCRAM-SHA-256',
  'OAUTHBEARER',
  'XOAUTH2',
]);
const methodLabel = (method: string): string => (KNOWN_METHODS.has(method) ? method : 'other');

/**
 * Every Poplar metric, in one registry. Counters shared with the monitor protocol are read from
 * `ServerStats` at scrape time, so the two can never disagree; per-command figures come from the
 * server's `command` event. No user name or address is ever a label.
 */
export function createMetricsRegistry(pop3: Pop3Server, monitor?: MonitorServer): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const stats = pop3.stats;
  const registers = [registry];

  const fromStats = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  new Gauge({
    name: 'pop3_connections',
    help: 'POP3 connections open now, in any state',
    registers,
    collect() {
      this.set(stats.connectionsOpen);
    },
  });
  new Gauge({
    name: 'pop3_sessions',
    help: 'Authenticated POP3 sessions open now',
    registers,
    collect() {
      this.set(stats.sessionsAuthenticated);
    },
  });
  fromStats('pop3_connections_total', 'POP3 connections accepted since start', () => stats.connectionsTotal);
  fromStats(
    'pop3_connections_refused_total',
    'POP3 connections refused by a limit',
    () => stats.connectionsRefused,
  );
  fromStats('pop3_bytes_received_total', 'Bytes received from POP3 clients', () => stats.bytesIn);
  fromStats('pop3_bytes_sent_total', 'Bytes sent to POP3 clients', () => stats.bytesOut);
  fromStats(
    'pop3_messages_retrieved_total',
    'Messages retrieved in full (RETR)',
    () => stats.messagesRetrieved,
  );
  fromStats(
    'pop3_logins_throttled_total',
    'Login attempts answered late by the login throttle (recent failures of the address or user name)',
    () => stats.loginsThrottled,
  );
  fromStats(
    'pop3_auth_cache_hits_total',
    'Password logins answered by the authentication cache, without the slow hash',
    () => stats.authCacheHits,
  );
  fromStats(
    'pop3_auth_cache_misses_total',
    'Password logins the authentication cache sent to the authenticator',
    () => stats.authCacheMisses,
  );
  new Gauge({
    name: 'pop3_auth_cache_entries',
    help: 'User names in the authentication cache now',
    registers,
    collect() {
      this.set(stats.authCacheEntries);
    },
  });
  fromStats('pop3_messages_deleted_total', 'Messages deleted at QUIT (UPDATE)', () => stats.messagesDeleted);
  new Counter({
    name: 'pop3_logins_total',
    help: 'Login attempts by method and result',
    labelNames: ['method', 'result'],
    registers,
    collect() {
      this.reset();
      for (const [method, counts] of stats.logins) {
        this.inc({ method: methodLabel(method), result: 'ok' }, counts.succeeded);
        this.inc({ method: methodLabel(method), result: 'failed' }, counts.failed);
      }
    },
  });

  const commands = new Counter({
    name: 'pop3_commands_total',
    help: 'POP3 commands by verb and result',
    labelNames: ['command', 'result'],
    registers,
  });
  const latency = new Histogram({
    name: 'pop3_command_duration_seconds',
    help: 'Time from a command line to the last byte of its reply handed to the socket',
    labelNames: ['command'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers,
  });
  pop3.on('command', ({ verb, result, seconds }) => {
    const command = commandLabel(verb);
    commands.inc({ command, result });
    latency.observe({ command }, seconds);
  });

  if (monitor !== undefined) addMonitorMetrics(registry, monitor);
  return registry;
}

/**
 * The registry of a primary process whose POP3 workers count for themselves (their registries
 * are summed into it at scrape time): its own process metrics and the monitor's.
 */
export function createPrimaryRegistry(monitor?: MonitorServer): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  if (monitor !== undefined) addMonitorMetrics(registry, monitor);
  return registry;
}

function addMonitorMetrics(registry: Registry, monitor: MonitorServer): void {
  new Counter({
    name: 'monitor_requests_total',
    help: 'Monitor protocol requests by type and status',
    labelNames: ['type', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, count] of monitor.counts) {
        const [type = 'none', status = 'closed'] = key.split(':');
        this.inc({ type, status }, count);
      }
    },
  });
}

/**
 * `poplar_build_info{version,node} 1`: which Poplar, on which Node.js, is answering. In a registry
 * of its own, added once to what /metrics serves (never summed over workers).
 */
export function createBuildInfoRegistry(version: string, node = process.version): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'poplar_build_info',
    help: 'Always 1: the labels say which Poplar version runs on which Node.js version',
    labelNames: ['version', 'node'],
    registers: [registry],
  }).set({ version, node }, 1);
  return registry;
}
