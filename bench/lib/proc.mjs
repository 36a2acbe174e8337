// Server CPU and memory from /proc, summed over a process and all its descendants.
import { clearInterval, setInterval } from 'node:timers';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // Fields from 3 on: f[1] = ppid, f[11..14] = utime stime cutime cstime.
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** The pid and all its live descendants. */
export function processTree(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (s === undefined) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop();
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU seconds used by the tree so far: utime+stime of live processes plus cutime+cstime (the
 * reaped children's share, e.g. Dovecot's finished pop3 processes).
 */
export function treeCpuSeconds(root) {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += stat(pid)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

function kbField(text, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** PSS of the tree in MB (smaps_rollup). */
export function treePssMb(root) {
  let kb = 0;
  for (const pid of processTree(root)) {
    try {
      kb += kbField(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'), 'Pss');
    } catch {
      // The process ended meanwhile.
    }
  }
  return kb / 1024;
}

function rssMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += kbField(readFileSync(`/proc/${pid}/status`, 'latin1'), 'VmRSS');
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

/** RSS of the tree in MB (status VmRSS). */
export function treeRssMb(root) {
  return rssMb(processTree(root));
}

/** Resets the peak RSS (VmHWM) of the tree's processes (Linux clear_refs 5). */
export function resetPeaks(root) {
  for (const pid of processTree(root)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      // not permitted or gone
    }
  }
}

/**
 * Samples the tree's summed RSS until stop(), which returns the peak MB. It runs in the load
 * generator's event loop: keep the interval coarse. The process list is rescanned every time, or
 * a short-lived Dovecot pop3 process would be missed.
 */
export function sampleRss(root, everyMs = 50) {
  let peak = treeRssMb(root);
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssMb(root));
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, treeRssMb(root));
    },
  };
}
