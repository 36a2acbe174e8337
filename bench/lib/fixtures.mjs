// Maildir fixtures shared by both servers. Built once in a cache folder under the temp dir (reused
// while its version marker matches), then hard-linked into each server's own tree, so both read
// the very same files (and page cache) while each keeps its own indexes and renames.
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { link, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const PASSWORD = 'benchpw';
export const SESSION_USERS = 100;
export const SESSION_MESSAGES = 20;
export const BIG_MAILDROP_MESSAGES = 50_000;
export const PIPELINE_MESSAGES = 1_000;
export const LARGE_MESSAGE_BYTES = 100 * 1024 * 1024;
export const IDLE_USERS = 10_000;
const VERSION = 'poplar-bench-fixtures 1';

export const sessionUser = (i) => `u${String(i).padStart(3, '0')}`;
export const idleUser = (i) => `idle${String(i).padStart(5, '0')}`;
export const LARGE_CLIENTS_MAX = 8;
/** One maildrop per parallel client (the POP3 lock), all holding hard links to one 100 MB file. */
export const bigUser = (i) => `big${i}`;
export const HUGE_USER = 'huge';
/**
 * Users whose password is stored hashed (Poplar's default scheme, which Dovecot reads too), each
 * with a copy (hard links) of session user i's maildrop: made in each server's tree, not cached.
 */
export const hashedUser = (i) => `h${String(i).padStart(3, '0')}`;
/** Hashed users with empty maildrops, each logged in once: a login no cache has seen. */
export const COLD_USERS = 1000;
export const coldUser = (i) => `c${String(i).padStart(4, '0')}`;
export const PIPE_USER = 'pipe';

// Deterministic pseudo-random numbers, so every machine gets the same fixtures.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt'.split(
  ' ',
);

/** A message of about `bytes` bytes, LF line ends (as MTAs deliver them); some lines may start with a dot. */
function message(rand, bytes, { subject, dots }) {
  const lines = [
    `Return-Path: <sender@example.org>`,
    `From: Sender <sender@example.org>`,
    `To: user@example.org`,
    `Subject: ${subject}`,
    `Date: Fri, 27 Nov 2026 10:00:00 +0000`,
    `Message-ID: <${subject.replace(/\W/g, '')}@bench.example.org>`,
    '',
  ];
  let size = lines.join('\n').length + 1;
  while (size < bytes) {
    let line = dots && rand() < 0.01 ? '.' : '';
    while (line.length < 72) line += `${WORDS[Math.floor(rand() * WORDS.length)]} `;
    line = line.slice(0, Math.min(72, bytes - size));
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

async function maildir(root, user) {
  const dir = join(root, user);
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
  return dir;
}

const fileName = (i, tag) => `${1_700_000_000 + i}.M${i}P1.${tag}.bench:2,`;

async function build(root, log) {
  const rand = rng(42);
  const users = [];
  log('fixtures: 100 users x 20 messages of 4-100 KB');
  for (let u = 0; u < SESSION_USERS; u++) {
    const user = sessionUser(u);
    users.push(user);
    const dir = await maildir(root, user);
    for (let i = 0; i < SESSION_MESSAGES; i++) {
      const bytes = 4096 + Math.floor(rand() * 96 * 1024);
      const body = message(rand, bytes, { subject: `${user} message ${i}`, dots: rand() < 0.1 });
      await writeFile(join(dir, 'cur', fileName(i, user)), body);
    }
  }
  log('fixtures: one 100 MB message');
  const bigDirs = [];
  for (let i = 0; i < LARGE_CLIENTS_MAX; i++) {
    users.push(bigUser(i));
    bigDirs.push(await maildir(root, bigUser(i)));
  }
  const bigFile = join(bigDirs[0], 'cur', fileName(0, 'big'));
  const out = createWriteStream(bigFile);
  const chunk = Buffer.from(message(rand, 1024 * 1024, { subject: 'big', dots: false }).split('\n\n')[1]);
  out.write(message(rand, 1024, { subject: 'big 100 MB', dots: false }));
  for (let size = 0; size < LARGE_MESSAGE_BYTES; size += chunk.length) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  for (const dir of bigDirs.slice(1)) await link(bigFile, join(dir, 'cur', fileName(0, 'big')));
  log('fixtures: 50,000-message maildrop');
  users.push(HUGE_USER);
  const hugeDir = await maildir(root, HUGE_USER);
  for (let i = 0; i < BIG_MAILDROP_MESSAGES; i += 500) {
    const batch = [];
    for (let k = i; k < i + 500; k++) {
      const bytes = 1024 + Math.floor(rand() * 3 * 1024);
      const body = message(rand, bytes, { subject: `huge ${k}`, dots: false });
      batch.push(writeFile(join(hugeDir, 'cur', fileName(k, 'huge')), body));
    }
    await Promise.all(batch);
  }
  log('fixtures: 1,000 messages of distinct sizes for pipelining');
  users.push(PIPE_USER);
  const pipeDir = await maildir(root, PIPE_USER);
  for (let i = 0; i < PIPELINE_MESSAGES; i++) {
    // Distinct sizes and no dot-started lines: the received length identifies the message.
    const body = message(rand, 2000 + i * 7, { subject: `pipe ${i}`, dots: false });
    await writeFile(join(pipeDir, 'cur', fileName(i, 'pipe')), body);
  }
  log('fixtures: 10,000 empty maildrops for idle sessions');
  for (let i = 0; i < IDLE_USERS; i += 200) {
    const batch = [];
    for (let k = i; k < i + 200; k++) {
      users.push(idleUser(k));
      batch.push(maildir(root, idleUser(k)));
    }
    await Promise.all(batch);
  }
  return users;
}

/**
 * Makes (or reuses) the fixture tree; returns { root, users } where root holds one Maildir per
 * user. `fresh` rebuilds it.
 */
export async function ensureFixtures({ fresh = false, log = console.error } = {}) {
  const base = join(tmpdir(), 'poplar-bench-fixtures');
  const root = join(base, 'mail');
  const marker = join(base, 'complete');
  if (!fresh && existsSync(marker) && (await readFile(marker, 'utf8')).startsWith(VERSION)) {
    const users = (await readFile(join(base, 'users'), 'utf8')).trim().split('\n');
    return { base, root, users };
  }
  await rm(base, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const started = Date.now();
  const users = await build(root, log);
  await writeFile(join(base, 'users'), `${users.join('\n')}\n`);
  await writeFile(marker, `${VERSION}\n`);
  log(`fixtures: built in ${((Date.now() - started) / 1000).toFixed(1)} s in ${base}`);
  return { base, root, users };
}

/** Hard-links the fixture tree into `target` (same inodes, own directories). */
export function linkTree(root, target) {
  const r = spawnSync('cp', ['-al', root, target], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cp -al ${root} ${target} failed`);
}

/**
 * Adds the hashed users' maildrops to a server's mail tree: hashedUser(i) gets hard links to
 * sessionUser(i)'s messages, coldUser(i) an empty maildrop.
 */
export async function addHashedUsers(mailRoot) {
  for (let i = 0; i < SESSION_USERS; i++) {
    const from = join(mailRoot, sessionUser(i));
    const to = await maildir(mailRoot, hashedUser(i));
    for (const sub of ['cur', 'new']) {
      for (const name of await readdir(join(from, sub)))
        await link(join(from, sub, name), join(to, sub, name));
    }
  }
  for (let i = 0; i < COLD_USERS; i += 200) {
    const batch = [];
    for (let k = i; k < i + 200; k++) batch.push(maildir(mailRoot, coldUser(k)));
    await Promise.all(batch);
  }
}

/**
 * A passwd-file both servers read: `user:{PLAIN}password`, then `user:{SCHEME}hash` for the
 * hashed users (`hashes`: one stored password per hashed user, and `cold` for the cold users).
 */
export async function writeUsersFile(path, users, hashes) {
  const lines = users.map((u) => `${u}:{PLAIN}${PASSWORD}\n`);
  if (hashes !== undefined) {
    hashes.users.forEach((h, i) => lines.push(`${hashedUser(i)}:${h}\n`));
    for (let i = 0; i < COLD_USERS; i++) lines.push(`${coldUser(i)}:${hashes.cold}\n`);
  }
  await writeFile(path, lines.join(''), { mode: 0o644 });
}

/**
 * Stored passwords for the hashed users, in Poplar's default scheme (from the compiled build's
 * hashPassword, as `poplar hash-password` makes them): one per hashed user, one shared by the cold
 * users. Each server reads the same strings.
 */
export async function makeHashes(repo) {
  const { hashPassword } = await import(
    pathToFileURL(join(repo, 'build', 'src', 'auth', 'passwords', 'registry.js')).href
  );
  const users = await Promise.all(Array.from({ length: SESSION_USERS }, () => hashPassword(PASSWORD)));
  return { users, cold: await hashPassword(PASSWORD) };
}
