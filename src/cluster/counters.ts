import type { Logger } from '../log.js';
import { LocalConnectionSlots, type ConnectionSlots } from '../pop3/connection-slots.js';
import { LoginThrottle, type Throttle } from '../pop3/throttle.js';
import { ClusterSlots, type ClusterSlotsOptions } from './connections.js';
import type { ClusterConnection } from './redis.js';
import { ClusterThrottle } from './throttle.js';

/** The counters a `Pop3Server` takes (its `counters` option). */
export interface Counters {
  readonly connections: ConnectionSlots;
  readonly loginThrottle: Throttle;
}

/**
 * The connection limits and login throttle of a node in a cluster, over `local` (the counters this
 * process would use alone: its own, or the primary's with workers), which they fall back to while
 * Redis cannot be reached. Taken out of Redis when the connection closes.
 */
export function clusterCounters(
  cluster: ClusterConnection,
  local: Counters | undefined,
  logger: Logger,
  options: ClusterSlotsOptions = {},
): Counters & { readonly connections: ClusterSlots; readonly loginThrottle: ClusterThrottle } {
  const connections = new ClusterSlots(
    cluster,
    local?.connections ?? new LocalConnectionSlots(),
    logger,
    options,
  );
  const loginThrottle = new ClusterThrottle(cluster, local?.loginThrottle ?? new LoginThrottle(), logger);
  cluster.beforeClose(async () => {
    loginThrottle.close();
    await connections.close();
  });
  return { connections, loginThrottle };
}
