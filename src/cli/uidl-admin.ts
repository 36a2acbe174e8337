import type { pino } from 'pino';
import { RedisMaildropLocks } from '../cluster/leases.js';
import type { DaemonConfig } from '../config/config.js';
import { MaildirStore } from '../mailstore/maildir/store.js';
import { describeUidls, importUidls, uidlHistory } from '../mailstore/maildir/uidl-admin.js';
import type { MonitorExtensions } from '../monitor/extensions.js';
import { uidlTargets } from '../monitor/uidl-targets.js';
import type { Pop3Side } from './pop3-side.js';

/**
 * The monitor's `uidl` and `importUidl` targets on the mail root in force: a Maildir store of the
 * monitor's own that takes each maildrop's lock as the sessions' stores do (the lock file, or with
 * `--cluster` the lease in Redis), so an import never races a session of the user.
 */
export function uidlExtensions(config: DaemonConfig, side: Pop3Side, logger: pino.Logger): MonitorExtensions {
  const log = logger.child({ component: 'uidl' });
  const locks =
    side.cluster === undefined
      ? undefined
      : new RedisMaildropLocks(side.cluster, { ttlMs: config.lockTtl * 1000, logger: log });
  const store = new MaildirStore({
    root: side.mailRoot.root,
    logger: log,
    blockingIo: false,
    lockTtlMs: config.lockTtl * 1000,
    ...(locks === undefined ? {} : { locks }),
  });
  const current = (): MaildirStore => {
    store.root = side.mailRoot.root; // `poplarctl maildir` may have changed it
    return store;
  };
  return uidlTargets({
    import: (user, lines) => importUidls(current(), user, lines, log),
    describe: (user) => describeUidls(current(), user, log),
    history: (user) => uidlHistory(current(), user, log),
  });
}
