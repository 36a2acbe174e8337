import type { Pop3State, Session } from './session.js';

/** One POP3 verb. `dispatch.ts` checks the state, runs it and maps whatever it throws to a reply. */
export interface Command {
  readonly states: readonly Pop3State[];
  /** Words for logs in place of the arguments (PASS and APOP carry secrets). */
  readonly hidesArgs?: boolean;
  run(session: Session, args: string): Promise<void>;
}
