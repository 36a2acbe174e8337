// Kills the real daemon with SIGKILL again and again while clients read, delete and quit and an
// MDA delivers, and checks after every kill that no message was lost, duplicated or damaged
// (test/reliability/crash-harness.ts; test/reliability/crash.test.ts runs a few dozen kills in CI).
//
//   node --import tsx scripts/crash-loop.mjs --kills 1000
//        [--seed N] [--users N] [--clients N] [--workers N[,N...]] [--every N] [--keep]
//
// --workers is passed to the daemon (default: its own, one worker per CPU); with a list, each
// restart takes the next count.
//
// Exit status 0 when every kill passed its checks, 1 at the first that did not (the temporary
// directory is then kept and named), 2 for a bad command line.
import { parseArgs } from 'node:util';
import { CrashLoopFailure, runCrashLoop } from '../test/reliability/crash-harness.ts';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '1000' },
    seed: { type: 'string' },
    users: { type: 'string' },
    clients: { type: 'string' },
    workers: { type: 'string' },
    every: { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
  },
});

/** A whole number from the command line, or undefined when the flag is absent. */
function integer(name) {
  const text = values[name];
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text)) {
    console.error(`crash-loop: --${name} takes a whole number`);
    process.exit(2);
  }
  return Number(text);
}

const kills = integer('kills');
const every = Math.max(1, integer('every'));
const options = { kills, keepDir: values.keep };
for (const name of ['seed', 'users', 'clients']) {
  const value = integer(name);
  if (value !== undefined) options[name] = value;
}
if (values.workers !== undefined) {
  if (!/^[0-9]+(,[0-9]+)*$/.test(values.workers)) {
    console.error('crash-loop: --workers takes a whole number or a list of them (1,2)');
    process.exit(2);
  }
  options.workers = values.workers.split(',').map(Number);
}

function summary(r) {
  const seconds = r.elapsedMs / 1000;
  const perKill = r.killsSurvived === 0 ? 0 : seconds / r.killsSurvived;
  return [
    `kills survived: ${r.killsSurvived} of ${kills} (${r.killsAfterQuit} of them right after a QUIT)`,
    `sessions run: ${r.sessionsRun} (QUIT after DELE confirmed ${r.quitsConfirmed}; ` +
      `QUIT cut off by the kill ${r.quitsRaced}, of which ${r.quitsCutMidUpdate} in the middle of UPDATE; ` +
      `dropped without QUIT ${r.sessionsDropped})`,
    `messages deleted: ${r.messagesDeleted}, delivered meanwhile: ${r.messagesDelivered}, ` +
      `retrieved and compared: ${r.messagesRetrieved}`,
    `Poplar leftovers found right after a kill (removed by the next login): ${r.leftoversAfterKill}`,
    `warnings logged: ${JSON.stringify(r.warnings)}`,
    `time per phase (s): ${Object.entries(r.phaseMs)
      .map(([phase, ms]) => `${phase} ${(ms / 1000).toFixed(1)}`)
      .join(', ')}`,
    `elapsed: ${seconds.toFixed(1)} s (${perKill.toFixed(2)} s per kill), seed ${r.seed}`,
  ].join('\n');
}

console.log(`crash-loop: ${kills} kills${options.seed === undefined ? '' : `, seed ${options.seed}`}`);
try {
  const result = await runCrashLoop({
    ...options,
    onKill: (p) => {
      if (p.killsSurvived % every === 0 && p.killsSurvived < kills) {
        console.log(
          `  ${p.killsSurvived} kills, ${p.sessionsRun} sessions, ${p.messagesDeleted} deleted, ` +
            `${(p.elapsedMs / 1000).toFixed(0)} s`,
        );
      }
    },
  });
  console.log(summary(result));
} catch (error) {
  console.error(error instanceof CrashLoopFailure ? `FAILED: ${error.message}` : error);
  process.exitCode = 1;
}
