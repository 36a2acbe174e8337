import { StringDecoder } from 'node:string_decoder';
import { text } from 'node:stream/consumers';

/** The reader gave up: a refused or mismatched secret, or Ctrl-C / Ctrl-D at a prompt. */
export class SecretInputError extends Error {
  override name = 'SecretInputError';
  /** Ctrl-C or Ctrl-D at the prompt: the caller exits at once (130), without a message of its own. */
  readonly isCancelled: boolean;
  constructor(message: string, options: { readonly isCancelled?: boolean } = {}) {
    super(message);
    this.isCancelled = options.isCancelled ?? false;
  }
}

/**
 * What a command does when reading a secret failed: a {@link SecretInputError} gives exit status
 * 130 when cancelled (no message) or 2 after `<program>: <message>` (and `hint`) on stderr; any
 * other error is thrown again.
 */
export function exitForSecretError(error: unknown, program: string, hint = ''): number {
  if (!(error instanceof SecretInputError)) throw error;
  if (error.isCancelled) return 130;
  process.stderr.write(`${program}: ${error.message}\n${hint}`);
  return 2;
}

export interface SecretOptions {
  /** What is asked for, as the prompt says it: `Password`, `Token`. */
  readonly what: string;
  /** On a terminal, ask a second time and require the same answer (a new password or token). */
  readonly isConfirmed: boolean;
  readonly stdin?: NodeJS.ReadStream;
  /** Where the prompts go (the terminal's echo is off while the secret is typed). */
  readonly prompts?: NodeJS.WritableStream;
}

/**
 * Reads one secret. On a terminal: a prompt on stderr, no echo, Enter ends it, and, when
 * `isConfirmed`, a second prompt that must match (as `doveadm pw` does). Piped: the whole of stdin,
 * without its one final line end, so `echo pw | poplar hash-password` works as before. Either way
 * the secret is one non-empty line.
 */
export async function readSecret(options: SecretOptions): Promise<string> {
  const stdin = options.stdin ?? process.stdin;
  const prompts = options.prompts ?? process.stderr;
  const lower = options.what.toLowerCase();
  if (!stdin.isTTY) {
    const secret = (await text(stdin)).replace(/\r?\n$/, '');
    if (secret === '' || secret.includes('\n'))
      throw new SecretInputError(`give one non-empty ${lower} on stdin`);
    return secret;
  }
  const terminal = new TerminalLines(stdin);
  try {
    prompts.write(`${options.what}: `);
    const first = await terminal.readHidden();
    prompts.write('\n');
    if (first === '') throw new SecretInputError(`an empty ${lower} is not allowed`);
    if (options.isConfirmed) {
      prompts.write(`Retype ${lower}: `);
      const second = await terminal.readHidden();
      prompts.write('\n');
      if (second !== first) throw new SecretInputError(`the ${lower}s do not match`);
    }
    return first;
  } catch (error) {
    if (error instanceof SecretInputError && error.isCancelled) prompts.write('\n');
    throw error;
  } finally {
    terminal.close();
  }
}

const ENTER = new Set([0x0d, 0x0a]);
const ERASE = new Set([0x7f, 0x08]);
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;

/**
 * A terminal in raw mode (no echo, no line editing by the terminal), read one key at a time. Keys
 * typed ahead of a second prompt (a pasted `pw\rpw\r`) are kept for it.
 */
class TerminalLines {
  readonly #stdin: NodeJS.ReadStream;
  readonly #wasRaw: boolean;
  #pending: number[] = [];
  #wake: (() => void) | undefined;
  #isEnded = false;
  readonly #onData = (chunk: Buffer): void => {
    this.#pending.push(...chunk);
    this.#wake?.();
  };
  readonly #onEnd = (): void => {
    this.#isEnded = true;
    this.#wake?.();
  };

  constructor(stdin: NodeJS.ReadStream) {
    this.#stdin = stdin;
    this.#wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.on('data', this.#onData);
    stdin.on('end', this.#onEnd);
    stdin.resume();
  }

  /** One line, without echo; the line editing keys a terminal offers (erase, Ctrl-U) work. */
  async readHidden(): Promise<string> {
    let bytes: number[] = [];
    for (;;) {
      const byte = this.#pending.shift();
      if (byte === undefined) {
        if (this.#isEnded) throw new SecretInputError('no input', { isCancelled: true });
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      if (ENTER.has(byte)) {
        // CR LF (or LF CR) counts as one Enter, not as an Enter and an empty second answer.
        const next = this.#pending[0];
        if (next !== undefined && next !== byte && ENTER.has(next)) this.#pending.shift();
        return new StringDecoder('utf8').end(Buffer.from(bytes));
      }
      if (byte === CTRL_C || (byte === CTRL_D && bytes.length === 0)) {
        throw new SecretInputError('cancelled', { isCancelled: true });
      }
      if (byte === CTRL_U) bytes = [];
      else if (ERASE.has(byte)) {
        // Drop one character: its UTF-8 continuation bytes (10xxxxxx), then the byte that starts it.
        let dropped = bytes.pop();
        while (dropped !== undefined && (dropped & 0xc0) === 0x80) dropped = bytes.pop();
      } else if (byte >= 0x20 || byte === 0x09) bytes.push(byte);
    }
  }

  close(): void {
    this.#stdin.off('data', this.#onData);
    this.#stdin.off('end', this.#onEnd);
    this.#stdin.setRawMode(this.#wasRaw);
    this.#stdin.pause();
  }
}
