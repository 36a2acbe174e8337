import type { ClusterConnection, ClusterState } from '../../src/cluster/redis.js';

/** Resolves when `connection` is in `state` (now or later). */
export function reach(connection: ClusterConnection, state: ClusterState): Promise<void> {
  if (connection.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const off = connection.onState((s) => {
      if (s !== state) return;
      off();
      resolve();
    });
  });
}
