import { apop } from './apop.js';
import { auth } from './auth.js';
import { capa } from './capa.js';
import { dele } from './dele.js';
import { list } from './list.js';
import { noop } from './noop.js';
import { pass } from './pass.js';
import { quit } from './quit.js';
import { retr } from './retr.js';
import { rset } from './rset.js';
import { stat } from './stat.js';
import { stls } from './stls.js';
import { top } from './top.js';
import type { Command } from '../command.js';
import { uidl } from './uidl.js';
import { user } from './user.js';
import { utf8 } from './utf8.js';
import { lang } from './lang.js';

/** Every verb the engine knows, keyed by its upper-case name. */
export const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['USER', user],
  ['PASS', pass],
  ['APOP', apop],
  ['QUIT', quit],
  ['STAT', stat],
  ['LIST', list],
  ['RETR', retr],
  ['DELE', dele],
  ['NOOP', noop],
  ['RSET', rset],
  ['TOP', top],
  ['UIDL', uidl],
  ['CAPA', capa],
  ['STLS', stls],
  ['AUTH', auth],
  ['UTF8', utf8],
  ['LANG', lang],
]);
