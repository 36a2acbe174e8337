// Crash safety in CI: the real daemon is killed with SIGKILL a few dozen times, at random moments
// and right after clients send QUIT, while clients retrieve and delete mail and an MDA delivers.
// After each kill the maildirs must hold every message that was not deleted by a completed (or
// possibly completed) QUIT, exactly once and byte for byte, and after a restart every user must be
// able to log in and see the right messages and sizes. scripts/crash-loop.mjs runs the same loop
// for a thousand kills.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCrashLoop } from './crash-harness.js';

const KILLS = 24;

test(
  `SIGKILL ${KILLS} times: no message lost, duplicated or damaged, every lock recovered`,
  { timeout: 240_000 },
  async () => {
    // Restarts alternate between one process and two workers: the locks are then taken and
    // recovered across processes too.
    const result = await runCrashLoop({ kills: KILLS, workers: [1, 2] });
    assert.equal(result.killsSurvived, KILLS);
    // The loop really exercised what it claims to.
    assert.ok(result.sessionsRun >= KILLS, `only ${result.sessionsRun} sessions ran`);
    assert.ok(result.quitsConfirmed > 0, 'no QUIT after DELE was confirmed');
    assert.ok(result.messagesDeleted > 0, 'nothing was deleted');
    assert.ok(result.messagesRetrieved > 0, 'nothing was retrieved');
    assert.ok(result.killsAfterQuit > 0, `no kill right after a QUIT (seed ${result.seed})`);
  },
);
