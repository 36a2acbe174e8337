import { hostname } from 'node:os';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { formatHostPort, type LogFormat } from '../config/config.js';

/** Fields every JSON entry has and a text line leaves out (the time and level lead the line). */
const HIDDEN_IN_TEXT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/**
 * The daemon's logger: pino's JSON lines, or (`text`, the default on a terminal) one readable line
 * per entry: `[time] LEVEL: message key=value ...`. Every entry carries `name`, `hostname`, `pid`.
 */
export function makeLogger(level: string, format: LogFormat | undefined): pino.Logger {
  const options: pino.LoggerOptions = {
    level,
    name: 'poplar',
    base: { pid: process.pid, hostname: hostname() },
  };
  const isTerminal = process.stdout.isTTY;
  if ((format ?? (isTerminal ? 'text' : 'json')) === 'json') return pino(options);
  return pino(
    options,
    pretty({
      colorize: isTerminal,
      // The fields go into the message line: pino-pretty's object output spans several lines.
      hideObject: true,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      messageFormat: (log, messageKey) => textLine(log, messageKey),
    }),
  );
}

/** `message key=value ...`: the entry's fields in the order pino wrote them (`cid` first). */
export function textLine(log: Record<string, unknown>, messageKey = 'msg'): string {
  const message = typeof log[messageKey] === 'string' ? log[messageKey] : '';
  const fields = Object.entries(log)
    .filter(([key, value]) => !HIDDEN_IN_TEXT.has(key) && key !== messageKey && value !== undefined)
    .map(([key, value]) => `${key}=${textValue(value)}`);
  return [message, ...fields].join(' ');
}

function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value !== 'object' || value === null) return String(value);
  // An error (pino's err serializer): its message, not its stack.
  if (!Array.isArray(value) && typeof (value as { message?: unknown }).message === 'string')
    return JSON.stringify((value as { message: string }).message);
  // Listening addresses: 127.0.0.1:1100,[::1]:1100.
  if (Array.isArray(value) && value.length > 0 && value.every(isAddress))
    return value.map((a) => formatHostPort(a.address, a.port)).join(',');
  return JSON.stringify(value);
}

const isAddress = (v: unknown): v is { address: string; port: number } =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as { address?: unknown }).address === 'string' &&
  typeof (v as { port?: unknown }).port === 'number';
