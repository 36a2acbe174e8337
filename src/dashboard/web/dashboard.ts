/**
 * The dashboard page: loads GET /api/state, draws it, then follows GET /api/events (an `update`
 * every few seconds). After the stream was lost and reopened, it loads /api/state again to fill the
 * gap. The kick buttons POST /api/kick after a confirming second click.
 */
import { Charts } from './charts.js';
import { appendPoints, formatDuration, fromSeries, type ChartWindow } from './format.js';
import type { InitialState, KickAnswer, KickRequest, Live, Update } from './state.js';
import { byId, renderFacts, renderLocks, renderSessions, renderTopUsers, type KickState } from './tables.js';

/** How long a kick button waits for its confirming click. */
const CONFIRM_MS = 4_000;
/** The wait before loading the state again after it failed, or opening a stream the server closed. */
const RETRY_MS = 5_000;

type Range = 'fine' | 'coarse';

const charts = new Charts();
let windows: Record<Range, ChartWindow> | null = null;
let range: Range = 'fine';
let csrf = '';
let live: Live | null = null;
/** The server's clock minus ours, so that ages are counted on the server's clock. */
let skewMs = 0;
let uptime: HTMLElement | null = null;
let kick: KickState = { confirming: null, sending: null };
let confirmTimer: ReturnType<typeof setTimeout> | undefined;

const serverNow = (): number => Date.now() + skewMs;

function setStatus(text: string, isError = false): void {
  const status = byId('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function setLive(isLive: boolean): void {
  const indicator = byId('live');
  indicator.textContent = isLive ? 'live' : 'reconnecting…';
  indicator.classList.toggle('up', isLive);
}

function renderLive(data: Live): void {
  live = data;
  skewMs = data.now - Date.now();
  renderSessions(data.sessions, data.sessionsTotal, data.now, kick);
  renderLocks(data.locks, data.now);
  renderTopUsers(data.topUsers);
  uptime = renderFacts(data.facts, data.now);
}

function applyState(state: InitialState): void {
  csrf = state.csrf;
  byId('admin').textContent = state.admin;
  windows = { fine: fromSeries(state.fine), coarse: fromSeries(state.coarse) };
  charts.show(windows[range]);
  renderLive(state);
}

function applyUpdate(update: Update): void {
  if (windows !== null) {
    appendPoints(windows.coarse, update.coarse);
    if (appendPoints(windows.fine, update.fine) || range === 'coarse') charts.show(windows[range]);
  }
  renderLive(update);
}

async function loadState(): Promise<boolean> {
  try {
    const response = await fetch('/api/state', { headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`${String(response.status)} ${await response.text()}`.trim());
    applyState((await response.json()) as InitialState);
    return true;
  } catch (error) {
    setStatus(`could not load the state: ${error instanceof Error ? error.message : String(error)}`, true);
    return false;
  }
}

function follow(): void {
  const events = new EventSource('/api/events');
  let wasLost = false;
  events.addEventListener('open', () => {
    setLive(true);
    if (wasLost) void loadState();
    wasLost = false;
  });
  events.addEventListener('update', (event: MessageEvent<string>) => {
    applyUpdate(JSON.parse(event.data) as Update);
  });
  events.addEventListener('error', () => {
    setLive(false);
    wasLost = true;
    // After an HTTP error (401, 503) EventSource gives up; a network error it retries by itself.
    if (events.readyState === EventSource.CLOSED) setTimeout(follow, RETRY_MS);
  });
}

function setRange(next: Range): void {
  range = next;
  byId('range-fine').setAttribute('aria-pressed', String(next === 'fine'));
  byId('range-coarse').setAttribute('aria-pressed', String(next === 'coarse'));
  if (windows !== null) charts.show(windows[next]);
}

function redrawSessions(): void {
  if (live !== null) renderSessions(live.sessions, live.sessionsTotal, serverNow(), kick);
}

async function sendKick(user: string): Promise<void> {
  kick = { confirming: null, sending: user };
  redrawSessions();
  try {
    const body: KickRequest = { user };
    const response = await fetch('/api/kick', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-poplar-csrf': csrf },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const reason = (await response.text()).trim() || response.statusText;
      setStatus(`kick ${user}: ${String(response.status)} ${reason}`, true);
      return;
    }
    const { ended } = (await response.json()) as KickAnswer;
    setStatus(`${user}: ended ${String(ended)} session${ended === 1 ? '' : 's'}`);
  } catch (error) {
    setStatus(`kick ${user}: ${error instanceof Error ? error.message : String(error)}`, true);
  } finally {
    kick = { confirming: null, sending: null };
    redrawSessions();
  }
}

function onKickClick(event: MouseEvent): void {
  const target = event.target;
  if (!(target instanceof Element)) return;
  const button = target.closest('button.kick');
  const user = button instanceof HTMLElement ? button.dataset['user'] : undefined;
  if (user === undefined || kick.sending !== null) return;
  clearTimeout(confirmTimer);
  if (kick.confirming === user) {
    void sendKick(user);
    return;
  }
  kick = { confirming: user, sending: null };
  confirmTimer = setTimeout(() => {
    kick = { confirming: null, sending: kick.sending };
    redrawSessions();
  }, CONFIRM_MS);
  redrawSessions();
}

async function start(): Promise<void> {
  byId('range-fine').addEventListener('click', () => {
    setRange('fine');
  });
  byId('range-coarse').addEventListener('click', () => {
    setRange('coarse');
  });
  byId('sessions').addEventListener('click', onKickClick);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    charts.redraw();
  });
  setInterval(() => {
    if (uptime !== null && live !== null)
      uptime.textContent = formatDuration(serverNow() - live.facts.startedAt);
  }, 1_000);
  while (!(await loadState())) await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  follow();
}

void start();
