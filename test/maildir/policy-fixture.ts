// Helpers of the delete-policy and EXPIRE tests: a maildir for alice, a store with a settable
// clock, and sessions opened with a policy on the MailUser (as library users and the engine give it).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Logger } from '../../src/log.js';
import { POLICY_STATE_FILE } from '../../src/mailstore/maildir/policy-state.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import type { CommitResult, Maildrop } from '../../src/mailstore/types.js';
import type { UserPolicyOverrides } from '../../src/policy.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';

export const DAY = 86_400_000;
/** 2026-01-01T00:00:00Z: the tests' "now" unless they move it. */
export const T0 = Date.UTC(2026, 0, 1);

export const signal = (): AbortSignal => new AbortController().signal;

export interface PolicyFixture {
  readonly root: string;
  readonly dir: string;
  readonly store: MaildirStore;
  /** The store's clock; tests move it. */
  readonly clock: { now: number };
  /** Opens alice's maildrop with `policy`, closed after the test. */
  open(policy?: UserPolicyOverrides): Promise<Maildrop>;
  /** Opens, lists the uids, closes. */
  uids(policy?: UserPolicyOverrides): Promise<string[]>;
  /** One session: open, commit these uids as deleted (and retrieved), close. */
  session(
    policy: UserPolicyOverrides,
    deleted: readonly string[],
    retrieved?: readonly string[],
  ): Promise<CommitResult>;
  /** Sorted names in a folder of the maildir (`cur`, `.Trash/cur`, ...); [] if it does not exist. */
  list(folder: string): Promise<string[]>;
  /** The state file's text, or undefined when there is none. */
  state(): Promise<string | undefined>;
}

/** alice's maildir with one message per base, all in cur/ (`<base>:2,`). */
export async function policyFixture(
  t: TestContext,
  bases: readonly string[],
  options: { readonly blockingIo?: boolean; readonly logger?: Logger } = {},
): Promise<PolicyFixture> {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(
    root,
    'alice',
    bases.map((base) => ({
      name: `${base}:2,`,
      folder: 'cur' as const,
      content: `Subject: ${base}\n\nbody\n`,
    })),
  );
  const clock = { now: T0 };
  const store = new MaildirStore({
    root,
    now: () => clock.now,
    ...(options.blockingIo === undefined ? {} : { blockingIo: options.blockingIo }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const open = async (policy?: UserPolicyOverrides): Promise<Maildrop> => {
    const drop = await store.open({ name: 'alice', ...(policy === undefined ? {} : { policy }) });
    t.after(() => drop.close());
    return drop;
  };
  const list = async (folder: string): Promise<string[]> =>
    (await readdir(join(dir, folder)).catch(() => [] as string[])).sort();
  return {
    root,
    dir,
    store,
    clock,
    open,
    uids: async (policy) => {
      const drop = await open(policy);
      const uids = drop.messages.map((m) => m.uid);
      await drop.close();
      return uids;
    },
    session: async (policy, deleted, retrieved = []) => {
      const drop = await open(policy);
      try {
        return await drop.commit({ deleted, retrieved });
      } finally {
        await drop.close();
      }
    },
    list,
    state: () => readFile(join(dir, POLICY_STATE_FILE), 'utf8').catch(() => undefined),
  };
}
