// Crash safety: the real daemon is killed with SIGKILL at random moments while clients read,
// delete and quit and an MDA delivers, and after every kill the maildirs on disk are checked
// against a model of what may and what must have happened. Shared by test/reliability/crash.test.ts
// (a few dozen kills) and scripts/crash-loop.mjs (a thousand).
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import {
  ID_HEADER,
  messageContent,
  pop3Form,
  randomSource,
  SMALL_KINDS,
  type MessageKind,
} from './crash-messages.js';
import { KillableDaemon } from './killable-daemon.js';
import { countOf } from '../../src/text.js';

export { pop3Form } from './crash-messages.js';

export interface CrashLoopOptions {
  /** How many times the daemon is killed (and restarted and checked). */
  readonly kills: number;
  /** Mailboxes served at once. */
  readonly users?: number;
  /** POP3 clients running at once during each round. */
  readonly clients?: number;
  /** Seed of the random choices (which messages, when to kill); timings still vary. */
  readonly seed?: number;
  /**
   * Passed to the daemon as `--workers N` when given (its default is one worker per CPU); with
   * several values, each restart takes the next one, so one run covers a single process and a
   * cluster.
   */
  readonly workers?: number | readonly number[];
  /** Keep the temporary directory (it is always kept when the loop fails). */
  readonly keepDir?: boolean;
  /** Called after every kill that passed its checks. */
  readonly onKill?: (progress: CrashLoopResult) => void;
}

export interface CrashLoopResult {
  readonly seed: number;
  /** Kills after which every check passed. */
  killsSurvived: number;
  /** Of those, kills sent right after a client sent QUIT (UPDATE possibly running). */
  killsAfterQuit: number;
  /** Client sessions started (logged in or refused [IN-USE]). */
  sessionsRun: number;
  /** Sessions that sent QUIT after DELE and saw its +OK before the kill. */
  quitsConfirmed: number;
  /** Sessions that sent QUIT after DELE and were cut off before the reply (the kill raced UPDATE). */
  quitsRaced: number;
  /** Of those, QUITs whose UPDATE the kill interrupted: some of their messages deleted, some not. */
  quitsCutMidUpdate: number;
  /** Sessions that marked messages with DELE and dropped the connection without QUIT. */
  sessionsDropped: number;
  /** Messages gone from disk (every one of them DELE'd and QUIT by a session). */
  messagesDeleted: number;
  /** Messages delivered into new/ during the rounds (besides the initial ones). */
  messagesDelivered: number;
  /** Messages retrieved and compared byte for byte. */
  messagesRetrieved: number;
  /** Poplar's temporary or stale files found in a maildir right after a kill (then cleaned by a login). */
  leftoversAfterKill: number;
  /** Time spent in each phase, summed over the kills. */
  readonly phaseMs: { round: number; checkDisk: number; restart: number; checkPop3: number };
  /** Warnings the daemon logged, by message. */
  readonly warnings: Record<string, number>;
  elapsedMs: number;
  /** The temporary directory (removed at the end unless kept). */
  readonly dir: string;
}

/** An invariant did not hold: the message says which, and the directory is kept for inspection. */
export class CrashLoopFailure extends Error {
  override name = 'CrashLoopFailure';
}

type MessageState = 'delivering' | 'present' | 'quitPending' | 'gone';

/** One message of the model: its exact bytes, and whether it must, may or must not be on disk. */
interface ModelMessage {
  readonly id: string;
  readonly user: string;
  /** File name without the `:2,` info part: the UIDL. */
  readonly base: string;
  readonly content: Buffer;
  /** What RETR sends before byte-stuffing: CRLF line ends, a final CRLF. */
  readonly expected: Buffer;
  state: MessageState;
  /** While `quitPending`: the session that sent QUIT. */
  quitBy?: number;
}

const PASSWORD = 'crash pw';
/** Names of Poplar's own files in a maildir. */
const POPLAR_FILES = new Set(['.poplar-lock', '.poplar-sizes', '.poplar-ledger', '.poplar-uidl-history']);
const MAILDIR_FOLDERS = new Set(['cur', 'new', 'tmp']);

/**
 * The whole experiment: a temp dir with a users file and maildirs, the daemon, the model of every
 * message, and the counters reported at the end.
 */
class CrashLoop {
  readonly #options: CrashLoopOptions;
  readonly #random: () => number;
  readonly #result: CrashLoopResult;
  readonly #dir: string;
  readonly #users: string[];
  readonly #messages = new Map<string, ModelMessage>();
  readonly #byBase = new Map<string, ModelMessage>();
  /** Users with a client session open (the server allows one per maildrop). */
  readonly #busy = new Set<string>();
  #daemon: KillableDaemon | undefined;
  #nextId = 0;
  #starts = 0;
  /** Set the moment the kill is sent: errors after it are the kill's doing. */
  #isKilled = false;
  #killAfterQuit: (() => void) | undefined;
  /** Chance that a session marks a listed message deleted: higher when the kill follows a QUIT, for longer UPDATEs. */
  #deleteChance = 0.15;

  constructor(options: CrashLoopOptions, dir: string, seed: number) {
    this.#options = options;
    this.#random = randomSource(seed);
    this.#dir = dir;
    this.#users = Array.from({ length: options.users ?? 4 }, (_, i) => `user${i + 1}`);
    this.#result = {
      seed,
      killsSurvived: 0,
      killsAfterQuit: 0,
      sessionsRun: 0,
      quitsConfirmed: 0,
      quitsRaced: 0,
      quitsCutMidUpdate: 0,
      sessionsDropped: 0,
      messagesDeleted: 0,
      messagesDelivered: 0,
      messagesRetrieved: 0,
      leftoversAfterKill: 0,
      phaseMs: { round: 0, checkDisk: 0, restart: 0, checkPop3: 0 },
      warnings: {},
      elapsedMs: 0,
      dir,
    };
  }

  get result(): CrashLoopResult {
    return this.#result;
  }

  /** Read through a method: the kill happens while a client awaits. */
  #wasKilled(): boolean {
    return this.#isKilled;
  }

  #pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.#random() * items.length)];
    if (item === undefined) throw new Error('nothing to pick from');
    return item;
  }

  #maildir(user: string): string {
    return join(this.#dir, 'mail', user);
  }

  async run(): Promise<void> {
    const began = performance.now();
    await this.#setUp();
    try {
      await this.#startDaemon();
      const phases = this.#result.phaseMs;
      const timed = async (phase: keyof typeof phases, action: Promise<void>): Promise<void> => {
        const start = performance.now();
        await action;
        phases[phase] += performance.now() - start;
      };
      for (let kill = 1; kill <= this.#options.kills; kill++) {
        await timed('round', this.#round(kill));
        await timed('checkDisk', this.#checkDisk(kill));
        await timed('restart', this.#startDaemon());
        await timed('checkPop3', this.#checkByPop3(kill));
        this.#result.killsSurvived += 1;
        this.#result.elapsedMs = performance.now() - began;
        this.#options.onKill?.(this.#result);
      }
    } finally {
      const daemon = this.#daemon;
      if (daemon !== undefined) {
        daemon.kill();
        await daemon.gone();
      }
      this.#result.elapsedMs = performance.now() - began;
    }
  }

  async #setUp(): Promise<void> {
    await writeFile(join(this.#dir, 'users'), this.#users.map((u) => `${u}:{PLAIN}${PASSWORD}\n`).join(''));
    // Failed logins must not be slowed down, and every client may connect at once.
    await writeFile(
      join(this.#dir, 'poplar.toml'),
      '[limits]\nauthFailureDelayMs = 0\nmaxConnectionsPerIp = 200\n',
    );
    for (const user of this.#users) {
      const dir = this.#maildir(user);
      for (const sub of MAILDIR_FOLDERS) await mkdir(join(dir, sub), { recursive: true });
      for (let i = 0; i < 12; i++) {
        const message = this.#newMessage(user, i < 2 ? 'large' : undefined);
        const folder = this.#random() < 0.5 ? 'new' : 'cur';
        const info = folder === 'new' ? '' : this.#random() < 0.5 ? ':2,' : ':2,S';
        await writeFile(join(dir, folder, message.base + info), message.content);
        message.state = 'present';
      }
    }
  }

  /** A message of known, varied content (see {@link messageContent}), registered as being delivered. */
  #newMessage(user: string, kind?: MessageKind): ModelMessage {
    this.#nextId += 1;
    const id = `m${this.#nextId}x${Math.floor(this.#random() * 1e9).toString(36)}`;
    const base = `${1_700_000_000 + this.#nextId}.M${this.#nextId}P${process.pid}.crash`;
    const content = messageContent(id, user, kind ?? this.#pick(SMALL_KINDS), this.#random);
    const message: ModelMessage = {
      id,
      user,
      base,
      content,
      expected: pop3Form(content),
      state: 'delivering',
    };
    this.#messages.set(id, message);
    this.#byBase.set(base, message);
    return message;
  }

  async #startDaemon(): Promise<void> {
    const args = [
      '--config',
      'poplar.toml',
      '--users',
      'users',
      '-m',
      'mail',
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '--no-monitor',
    ];
    const { workers } = this.#options;
    const counts = workers === undefined ? [] : typeof workers === 'number' ? [workers] : workers;
    const count = counts[this.#starts++ % Math.max(1, counts.length)];
    if (count !== undefined) args.push('--workers', String(count));
    this.#daemon = await KillableDaemon.start(this.#dir, args, this.#result.warnings);
  }

  #fail(kill: number, problem: string): never {
    throw new CrashLoopFailure(
      `kill ${kill} (seed ${this.#result.seed}): ${problem}\ndirectory kept: ${this.#dir}` +
        `\ndaemon's last lines:\n${this.#daemon?.tail ?? ''}`,
    );
  }

  /** Clients and the MDA work until the daemon is killed, at a random moment or right after a QUIT. */
  async #round(kill: number): Promise<void> {
    const daemon = this.#daemon;
    if (daemon === undefined) throw new Error('no daemon');
    this.#isKilled = false;
    const doKill = (): void => {
      if (this.#isKilled) return;
      this.#isKilled = true;
      daemon.kill();
    };
    const isAfterQuit = this.#random() < 0.35;
    this.#deleteChance = isAfterQuit ? 0.4 : 0.15;
    let timer: NodeJS.Timeout;
    if (isAfterQuit) {
      // Right after QUIT leaves: at once, or a moment later while UPDATE unlinks and renames.
      const wait = this.#pick([-1, 0, 0, 1, 2, 4, 8]);
      this.#killAfterQuit = () => {
        this.#killAfterQuit = undefined;
        if (this.#isKilled) return; // the fallback came first
        this.#result.killsAfterQuit += 1;
        if (wait < 0) doKill();
        else if (wait === 0) setImmediate(doKill);
        else setTimeout(doKill, wait);
      };
      // In case no client gets as far as QUIT.
      timer = setTimeout(doKill, 3_000);
    } else {
      this.#killAfterQuit = undefined;
      timer = setTimeout(doKill, 20 + Math.floor(this.#random() * 600));
    }
    const problems: string[] = [];
    const clients = Array.from({ length: this.#options.clients ?? 4 }, async () => {
      while (!this.#isKilled) {
        try {
          await this.#session(daemon.port);
        } catch (error) {
          // Connections cut by the kill are expected; a wrong reply received in full never is.
          if (!this.#wasKilled() || error instanceof CrashLoopFailure) problems.push(String(error));
          return;
        }
      }
    });
    const mda = (async () => {
      while (!this.#isKilled) {
        try {
          await this.#deliver();
        } catch (error) {
          problems.push(`MDA: ${String(error)}`);
          return;
        }
      }
    })();
    await Promise.all([...clients, mda]);
    clearTimeout(timer);
    this.#killAfterQuit = undefined;
    await daemon.gone();
    if (daemon.child.signalCode !== 'SIGKILL') {
      this.#fail(kill, `the daemon ended by itself (exit code ${daemon.child.exitCode})`);
    }
    // Errors logged before the kill are bugs (an internal error, a message that could not be deleted).
    if (daemon.errors.length > 0) this.#fail(kill, `the daemon logged errors:\n${daemon.errors.join('\n')}`);
    if (problems.length > 0) this.#fail(kill, problems.join('\n'));
    this.#daemon = undefined;
  }

  /** A Maildir delivery, as an MDA does it: written in tmp/ (in two steps), then renamed into new/. */
  async #deliver(): Promise<void> {
    const counts = new Map(this.#users.map((u) => [u, 0]));
    for (const m of this.#messages.values()) {
      if (m.state !== 'gone') counts.set(m.user, (counts.get(m.user) ?? 0) + 1);
    }
    const wanting = this.#users.filter((u) => (counts.get(u) ?? 0) < 30);
    if (wanting.length === 0) {
      await delay(20);
      return;
    }
    const user = this.#pick(wanting);
    const message = this.#newMessage(user, this.#random() < 0.04 ? 'large' : undefined);
    const dir = this.#maildir(user);
    const tmp = join(dir, 'tmp', message.base);
    const half = Math.floor(message.content.length / 2);
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.write(message.content, 0, half);
      await delay(Math.floor(this.#random() * 10));
      await file.write(message.content, half, message.content.length - half);
    } finally {
      await file.close();
    }
    await rename(tmp, join(dir, 'new', message.base));
    message.state = 'present';
    this.#result.messagesDelivered += 1;
    await delay(Math.floor(this.#random() * 10));
  }

  /** One client session: log in, list, retrieve and compare, mark some deleted, then QUIT or drop. */
  async #session(port: number): Promise<void> {
    const free = this.#users.filter((u) => !this.#busy.has(u));
    if (free.length === 0) {
      await delay(5);
      return;
    }
    const user = this.#pick(free);
    this.#busy.add(user);
    let client: Pop3TestClient | undefined;
    try {
      client = await Pop3TestClient.connect(port);
      this.#result.sessionsRun += 1;
      await this.#converse(client, user, this.#result.sessionsRun);
    } finally {
      client?.close();
      this.#busy.delete(user);
    }
  }

  async #converse(client: Pop3TestClient, user: string, session: number): Promise<void> {
    expect(client.greeting.startsWith('+OK'), `greeting: ${client.greeting}`);
    expect((await client.command(`USER ${user}`)).startsWith('+OK'), 'USER refused');
    const pass = await client.command(`PASS ${PASSWORD}`);
    // A session just dropped may still hold the lock for a moment.
    if (pass.startsWith('-ERR [IN-USE]')) return;
    expect(pass.startsWith('+OK'), `${user}: PASS answered ${pass}`);
    const listing = await this.#listing(client, user);
    const deleted: ModelMessage[] = [];
    for (const [msgNo, message] of listing) {
      if (this.#random() < 0.25) {
        const top = this.#random() < 0.2;
        const reply = await client.command(top ? `TOP ${msgNo} 0` : `RETR ${msgNo}`);
        expect(reply.startsWith('+OK'), `${user}: RETR/TOP ${msgNo} (${message.id}) answered ${reply}`);
        const body = await client.readBody();
        if (!top) {
          expect(reply === `+OK ${message.expected.length} octets`, `${user}: RETR ${msgNo}: ${reply}`);
          expect(body.equals(message.expected), `${user}: RETR ${msgNo} (${message.id}): content differs`);
          this.#result.messagesRetrieved += 1;
        }
      }
      if (this.#random() < this.#deleteChance) {
        const reply = await client.command(`DELE ${msgNo}`);
        expect(reply.startsWith('+OK'), `${user}: DELE ${msgNo} answered ${reply}`);
        deleted.push(message);
      }
    }
    if (deleted.length > 0 && this.#random() < 0.3) {
      // Dropped without QUIT: nothing may be deleted.
      this.#result.sessionsDropped += 1;
      client.close();
      return;
    }
    client.send('QUIT');
    for (const m of deleted) {
      m.state = 'quitPending';
      m.quitBy = session;
    }
    if (deleted.length > 0) this.#killAfterQuit?.();
    let reply: string;
    try {
      reply = await client.readLine();
    } catch (error) {
      if (this.#isKilled && deleted.length > 0) this.#result.quitsRaced += 1;
      throw error;
    }
    expect(reply.startsWith('+OK'), `${user}: QUIT answered ${reply}`);
    for (const m of deleted) m.state = 'gone';
    if (deleted.length > 0) this.#result.quitsConfirmed += 1;
  }

  /** UIDL and LIST: every listed message must be one the model allows, with its exact size. */
  async #listing(client: Pop3TestClient, user: string): Promise<[number, ModelMessage][]> {
    const uidl = await client.multi('UIDL');
    expect(uidl.status.startsWith('+OK'), `${user}: UIDL answered ${uidl.status}`);
    const list = await client.multi('LIST');
    expect(list.status.startsWith('+OK'), `${user}: LIST answered ${list.status}`);
    const sizes = new Map(list.lines.map((l) => l.split(' ') as [string, string]));
    const out: [number, ModelMessage][] = [];
    for (const line of uidl.lines) {
      const [msgNo = '', uid = ''] = line.split(' ');
      const message = this.#byBase.get(uid);
      expect(message !== undefined, `${user}: UIDL lists ${uid}, which nobody delivered`);
      expect(message.user === user, `${user}: UIDL lists ${uid}, a message of ${message.user}`);
      expect(message.state !== 'gone', `${user}: UIDL lists ${uid} (${message.id}), deleted after a QUIT`);
      const size = sizes.get(msgNo);
      expect(
        size === String(message.expected.length),
        `${user}: LIST ${msgNo} says ${size} octets, ${message.id} has ${message.expected.length}`,
      );
      out.push([Number(msgNo), message]);
    }
    return out;
  }

  /**
   * With the daemon dead: every message that must exist is there exactly once with its exact
   * bytes, every message deleted after a confirmed QUIT is gone, nothing else is there.
   */
  async #checkDisk(kill: number): Promise<void> {
    const seen = new Map<string, number>();
    for (const user of this.#users) {
      const dir = this.#maildir(user);
      for (const folder of ['cur', 'new']) {
        for (const entry of await readdir(join(dir, folder), { withFileTypes: true })) {
          const where = `${user}/${folder}/${entry.name}`;
          if (!entry.isFile()) this.#fail(kill, `${where} is not a regular file`);
          const content = await readFile(join(dir, folder, entry.name));
          const id = ID_HEADER.exec(content.toString('latin1'))?.[1];
          const message = id === undefined ? undefined : this.#messages.get(id);
          if (message === undefined) this.#fail(kill, `${where}: a file nobody delivered (partial?)`);
          if (!content.equals(message.content)) this.#fail(kill, `${where}: content of ${id} changed`);
          if (message.user !== user) this.#fail(kill, `${where}: ${id} belongs to ${message.user}`);
          const base = entry.name.split(':')[0];
          if (base !== message.base) this.#fail(kill, `${where}: ${id} was delivered as ${message.base}`);
          if (folder === 'new' && entry.name !== message.base) this.#fail(kill, `${where}: renamed in new/`);
          seen.set(message.id, (seen.get(message.id) ?? 0) + 1);
        }
      }
      const tmp = await readdir(join(dir, 'tmp'));
      if (tmp.length > 0)
        this.#fail(kill, `${user}/tmp/ holds ${tmp.join(', ')}, which the MDA did not leave`);
      for (const name of await readdir(dir)) {
        if (MAILDIR_FOLDERS.has(name) || POPLAR_FILES.has(name)) continue;
        if (name.startsWith('.poplar-')) this.#result.leftoversAfterKill += 1;
        else this.#fail(kill, `${user}/${name}: unexpected`);
      }
    }
    const raced = new Map<number, { gone: number; kept: number }>();
    for (const message of this.#messages.values()) {
      const count = seen.get(message.id) ?? 0;
      const what = `${message.user}'s ${message.id} (${message.base})`;
      if (count > 1) this.#fail(kill, `${what} is on disk ${count} times`);
      switch (message.state) {
        case 'delivering':
          this.#fail(kill, `${what}: a delivery did not finish`);
          break;
        case 'present':
          if (count === 0) this.#fail(kill, `${what} is lost: no QUIT was sent after a DELE of it`);
          break;
        case 'gone':
          if (count > 0) this.#fail(kill, `${what} is still there although QUIT after DELE was answered +OK`);
          break;
        case 'quitPending': {
          // The kill raced UPDATE: either outcome is right, and from now on it is known.
          message.state = count === 0 ? 'gone' : 'present';
          const outcome = raced.get(message.quitBy ?? 0) ?? { gone: 0, kept: 0 };
          outcome[count === 0 ? 'gone' : 'kept'] += 1;
          raced.set(message.quitBy ?? 0, outcome);
          delete message.quitBy;
          break;
        }
      }
    }
    for (const { gone, kept } of raced.values())
      if (gone > 0 && kept > 0) this.#result.quitsCutMidUpdate += 1;
    for (const message of [...this.#messages.values()]) {
      if (message.state !== 'gone') continue;
      this.#result.messagesDeleted += 1;
      this.#messages.delete(message.id);
      this.#byBase.delete(message.base);
    }
  }

  /**
   * With the daemon restarted: every user can log in at once (the dead daemon's locks are
   * recovered), sees exactly the model's messages with the right sizes (the size index agrees),
   * and a login leaves no temporary file of Poplar's behind.
   */
  async #checkByPop3(kill: number): Promise<void> {
    const port = this.#daemon?.port ?? 0;
    for (const user of this.#users) {
      const client = await Pop3TestClient.connect(port);
      try {
        const expected = [...this.#messages.values()].filter((m) => m.user === user);
        const octets = expected.reduce((sum, m) => sum + m.expected.length, 0);
        await client.command(`USER ${user}`);
        const pass = await client.command(`PASS ${PASSWORD}`);
        const hello = `+OK ${user} has ${countOf(expected.length, 'message')} (${octets} octets)`;
        if (pass !== hello)
          this.#fail(kill, `after restart, ${user} got ${JSON.stringify(pass)}, not ${hello}`);
        const listing = await this.#listing(client, user).catch((error: unknown) => {
          this.#fail(kill, `after restart: ${String(error)}`);
        });
        const listed = new Set(listing.map(([, m]) => m.id));
        const missing = expected.filter((m) => !listed.has(m.id)).map((m) => m.id);
        if (missing.length > 0) this.#fail(kill, `after restart, ${user} does not see ${missing.join(', ')}`);
        if (listing.length > 0) {
          const [msgNo, message] = this.#pick(listing);
          const status = await client.command(`RETR ${msgNo}`);
          const body = await client.readBody();
          if (status !== `+OK ${message.expected.length} octets` || !body.equals(message.expected))
            this.#fail(kill, `after restart, RETR of ${user}'s ${message.id} gave other bytes (${status})`);
          this.#result.messagesRetrieved += 1;
        }
        const quit = await client.command('QUIT');
        if (!quit.startsWith('+OK')) this.#fail(kill, `after restart, ${user}'s QUIT answered ${quit}`);
        await client.closed();
      } finally {
        client.close();
      }
      const left = (await readdir(this.#maildir(user))).filter(
        // The size index, the user's ledger (their last sessions) and the UIDL history stay; nothing else may.
        (n) => !MAILDIR_FOLDERS.has(n) && !POPLAR_FILES.has(n) && n !== '.poplar-lock',
      );
      if (left.length > 0)
        this.#fail(kill, `after a clean session, ${user}'s maildir holds ${left.join(', ')}`);
    }
  }
}

function expect(condition: boolean, problem: string): asserts condition {
  if (!condition) throw new CrashLoopFailure(problem);
}

/**
 * Runs the loop: rounds of POP3 sessions and deliveries ended by SIGKILL, each followed by checks
 * on disk and through POP3 after a restart. Rejects with a {@link CrashLoopFailure} naming the
 * first invariant that broke (the temporary directory is then kept).
 */
export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopResult> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const dir = await mkdtemp(join(tmpdir(), 'poplar-crash-'));
  const loop = new CrashLoop(options, dir, seed);
  try {
    await loop.run();
  } catch (error) {
    if (error instanceof CrashLoopFailure) throw error;
    throw new CrashLoopFailure(`seed ${seed}: ${String(error)}; directory kept: ${dir}`, { cause: error });
  }
  if (options.keepDir !== true) await rm(dir, { recursive: true, force: true });
  return loop.result;
}
