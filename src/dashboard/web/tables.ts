/**
 * The page's tables and lists, filled from the server's data with textContent only: user names,
 * addresses and configuration values are the clients' and the admin's input, never markup.
 */
import { CERT_WARNING_DAYS, daysLeft, formatBytes, formatDuration } from './format.js';
import type { Facts, LockRow, SessionRow, TopUser } from './state.js';

/** A new element with these classes and this text. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = '',
  className = '',
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (text !== '') element.textContent = text;
  if (className !== '') element.className = className;
  return element;
}

function byId(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`dashboard: #${id} is missing from the page`);
  return element;
}

function tbodyOf(id: string): HTMLTableSectionElement {
  const body = byId(id).querySelector('tbody');
  if (body === null) throw new Error(`dashboard: #${id} has no tbody`);
  return body;
}

/** Sets a cell's text only when it differs, so that a selection in the table survives updates. */
function setCell(row: HTMLTableRowElement, index: number, text: string, title = ''): void {
  while (row.cells.length <= index) row.insertCell();
  const cell = row.cells[index];
  if (cell === undefined) return;
  if (cell.textContent !== text) cell.textContent = text;
  if (cell.title !== title) cell.title = title;
}

function clock(ms: number): string {
  return new Date(ms).toLocaleString();
}

/** What the kick buttons show: a user waiting for its confirming click. */
export interface KickState {
  readonly confirming: string | null;
  readonly sending: string | null;
}

/**
 * Updates #sessions in place, row by row (keyed on the session's key), so that a kick button keeps
 * its focus and its "confirm?" state while the rows around it change.
 */
export function renderSessions(
  sessions: readonly SessionRow[],
  total: number,
  now: number,
  kick: KickState,
): void {
  const body = tbodyOf('sessions');
  const old = new Map<string, HTMLTableRowElement>();
  for (const row of Array.from(body.rows)) old.set(row.dataset['key'] ?? '', row);
  let at = 0;
  for (const session of sessions) {
    let row = old.get(session.key);
    old.delete(session.key);
    if (row === undefined) {
      row = el('tr');
      row.dataset['key'] = session.key;
    }
    if (session.user === null) delete row.dataset['user'];
    else row.dataset['user'] = session.user;
    setCell(row, 0, session.user ?? '–');
    // The kick button next to the name: on a phone it is in view without scrolling the table.
    updateKickButton(row, session.user, kick);
    setCell(row, 2, session.address);
    setCell(row, 3, session.state);
    setCell(row, 4, formatDuration(now - session.since), clock(session.since));
    setCell(row, 5, formatBytes(session.bytesOut));
    setCell(row, 6, formatBytes(session.bytesIn));
    setCell(row, 7, session.where);
    if (body.rows[at] !== row) body.insertBefore(row, body.rows[at] ?? null);
    at += 1;
  }
  for (const row of old.values()) row.remove();
  const more = byId('sessions-more');
  more.hidden = total <= sessions.length;
  more.textContent = more.hidden ? '' : `showing ${sessions.length} of ${total} sessions`;
  byId('sessions-empty').hidden = total > 0;
}

/** The kick button of a row (cell 1), made once and updated in place, so that it keeps its focus. */
function updateKickButton(row: HTMLTableRowElement, user: string | null, kick: KickState): void {
  while (row.cells.length <= 1) row.insertCell();
  const cell = row.cells[1];
  if (cell === undefined) return;
  let button = cell.querySelector('button');
  if (user === null) {
    button?.remove();
    return;
  }
  if (button === null) {
    button = el('button', '', 'kick');
    button.type = 'button';
    cell.append(button);
  }
  button.dataset['user'] = user;
  const isConfirming = kick.confirming === user;
  const text = kick.sending === user ? 'ending…' : isConfirming ? 'confirm?' : 'kick';
  if (button.textContent !== text) button.textContent = text;
  button.classList.toggle('confirm', isConfirming);
  button.disabled = kick.sending === user;
  button.title = isConfirming
    ? `click again to end every session of ${user}`
    : `end every session of ${user}`;
}

/** Replaces the rows of a simple table. */
function fillTable(id: string, rows: readonly (readonly string[])[], emptyId: string): void {
  const body = tbodyOf(id);
  body.replaceChildren(
    ...rows.map((cells) => {
      const row = el('tr');
      for (const text of cells) row.append(el('td', text));
      return row;
    }),
  );
  byId(emptyId).hidden = rows.length > 0;
}

export function renderLocks(locks: readonly LockRow[], now: number): void {
  fillTable(
    'locks',
    locks.map((lock) => [lock.user, lock.holder, formatDuration(now - lock.since)]),
    'locks-empty',
  );
}

export function renderTopUsers(users: readonly TopUser[]): void {
  fillTable(
    'top-users',
    users.map((user) => [user.user, formatBytes(user.bytes)]),
    'top-users-empty',
  );
  // A bar under each row's bytes, relative to the first (the largest).
  const largest = users[0]?.bytes ?? 0;
  const rows = tbodyOf('top-users').rows;
  users.forEach((user, i) => {
    const cell = rows[i]?.cells[1];
    if (cell === undefined || largest <= 0) return;
    const bar = el('span', '', 'bar');
    bar.style.width = `${String(Math.max(1, Math.round((user.bytes / largest) * 100)))}%`;
    cell.append(bar);
  });
}

/** Fills #facts; answers the element whose text is the uptime, for the page to tick. */
export function renderFacts(facts: Facts, now: number): HTMLElement {
  const list = el('dl');
  const add = (term: string, value: string, className = ''): HTMLElement => {
    const dd = el('dd', value, className);
    list.append(el('dt', term), dd);
    return dd;
  };
  add('Version', facts.version);
  const uptime = add('Uptime', formatDuration(now - facts.startedAt));
  uptime.title = `started ${clock(facts.startedAt)}`;
  add('Workers', String(facts.workers));
  if (facts.nodes.length > 0) add('Nodes', facts.nodes.join(', '));
  if (facts.nodesMissing.length > 0) add('Missing nodes', facts.nodesMissing.join(', '), 'warning');
  const cert = facts.certificate;
  if (cert === null) add('Certificate', 'no TLS');
  else {
    const days = daysLeft(cert.notAfter, now);
    const when = days < 0 ? `expired ${String(-days)} d ago` : `${String(days)} d left`;
    const dd = add(
      'Certificate',
      `${cert.subject}, expires ${new Date(cert.notAfter).toLocaleDateString()} (${when})`,
    );
    dd.title = clock(cert.notAfter);
    if (days < CERT_WARNING_DAYS) dd.className = 'warning';
  }
  const config = el('dl', '', 'config');
  for (const [label, value] of facts.config) config.append(el('dt', label), el('dd', value));
  const parts: HTMLElement[] = [list];
  if (facts.config.length > 0) parts.push(el('h3', 'Configuration'), config);
  byId('facts').replaceChildren(...parts);
  return uptime;
}

export { byId };
